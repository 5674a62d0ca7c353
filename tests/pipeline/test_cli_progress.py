"""What `kpi-pipeline run` shows while it works and when it ends (the 2-week demo, for real)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The demo set-up lives beside the warehouse tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "warehouse"))
from demo_project import FIRST_DAY, LAST_DAY, DemoProject

TIME = re.compile(r"^\d\d:\d\d ")


def run_cli(project: DemoProject, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env["KPI_WAREHOUSE_URL"] = project.warehouse_url
    return subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", "run", "--plan", str(project.plan_path),
         "--from", str(FIRST_DAY), "--to", str(LAST_DAY), *extra],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    project = DemoProject.create(root, f"duckdb:///{root / 'kpi.duckdb'}")
    return project, run_cli(project)


def test_default_output_shows_each_stage_then_a_summary(demo):
    project, done = demo
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    err = done.stderr.splitlines()
    assert err[0] == (
        f"run: plan 'demo', 14 day(s) 2026-08-03..2026-08-16, warehouse {project.warehouse_url}"
    )
    stages = [TIME.sub("", line) for line in err[1:] if TIME.match(line)]
    assert all(TIME.match(line) or line.startswith("check ") for line in err[1:])
    # The rows each raw table holds now are the rows the stage line reports.
    traffic, events = (
        int(project.read(f"select count(*) as n from raw.{t}")["n"].iloc[0])
        for t in ("csv_traffic", "csv_events")
    )
    quarantined = int(project.read("select count(*) as n from raw.quarantine")["n"].iloc[0])
    assert quarantined == 1  # the demo's broken row of 9 August
    assert (
        f"extract csv_exports: 14 of 14 day(s), {traffic + events:,} rows "
        f"(raw/csv_traffic {traffic:,}, raw/csv_events {events:,}), 1 quarantined"
    ) in stages
    assert (
        "extract ga4_reports: 14 of 14 day(s), 0 rows (raw/ga4_traffic 0, raw/ga4_events 0, "
        "raw/ga4_extract_log 0)"
    ) in stages
    sql = [line for line in stages if line.startswith("SQL model ")]
    models = len(sql)
    assert [line.split(":")[0] for line in sql] == [
        f"SQL model {k} of {models}" for k in range(1, models + 1)
    ]
    assert not any(line.split(": ")[1].startswith("marts/") for line in sql)
    scores = int(project.read("select count(*) as n from marts.kpi_scores")["n"].iloc[0])
    counts = {
        table: int(project.read(f"select count(*) as n from marts.{table}")["n"].iloc[0])
        for table in ("unmapped_traffic", "objective_status", "tactic_ranking")
    }
    # kpi_values and kpi_scores hold one row per KPI period and segment each.
    publish = [line for line in stages if line.startswith("publish: ")]
    assert publish == [
        "publish: 6 marts in one transaction ("
        f"marts/unmapped_traffic {counts['unmapped_traffic']:,}, marts/kpi_values {scores:,}, "
        f"marts/kpi_scores {scores:,}, marts/objective_status {counts['objective_status']:,}, "
        f"marts/tactic_ranking {counts['tactic_ranking']:,}, marts/kpi_period_to_date 0)"
    ]
    assert stages.index(publish[0]) > stages.index(sql[-1])
    alerts = [line for line in stages if line.startswith("alerts: ")]
    assert len(alerts) == 1 and alerts[0].endswith(" sent, 0 failed")
    assert (
        "warning: source 'ga4_export': 1 row(s) quarantined (see the raw.quarantine table of "
        "this plan)"
    ) in stages
    # No Dagster event dump at the default level.
    assert "DEBUG" not in done.stderr and "STEP_START" not in done.stderr

    out = done.stdout.splitlines()
    assert re.fullmatch(r"run \S+ materialized 14 day\(s\) 2026-08-03\.\.2026-08-16", out[0])
    assert out[1] == f"rows loaded: ga4_export {traffic + events:,}; 1 quarantined"
    statuses = re.fullmatch(
        rf"KPIs: {scores:,} scores; (\d+) latest statuses, (\d+) changed", out[2]
    )
    assert statuses is not None
    # A first run changes every status: there was none before.
    assert statuses[1] == statuses[2] and int(statuses[1]) > 0
    assert re.fullmatch(r"alerts: \d+ decided, 0 sent", out[3])
    assert out[4] == f"warehouse: {project.warehouse_url}"
    assert re.fullmatch(r"elapsed: \d+\.\d s", out[5])
    assert out[6].startswith("data checks: ")
    assert len(out) == 7


def test_a_second_run_changes_no_status_and_quiet_prints_nothing(demo):
    project, _ = demo
    again = run_cli(project)
    assert again.returncode == 0, again.stderr
    assert re.search(r"^KPIs: .* latest statuses, 0 changed$", again.stdout, re.M)
    quiet = run_cli(project, "--quiet")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_verbose_is_dagster_debug_without_stage_lines(demo):
    project, _ = demo
    done = run_cli(project, "--verbose")
    assert done.returncode == 0, done.stderr
    assert "STEP_START" in done.stderr and " - DEBUG - " in done.stderr
    assert not any(TIME.match(line) for line in done.stderr.splitlines())
    assert done.stdout.splitlines()[-1].startswith("data checks: ")
