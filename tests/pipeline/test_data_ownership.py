"""Every row has an owner: a plan's schemas, a declared source, a file read for the run's days.

Each scenario runs the real daily job (`run_days`) on small hand-made exports, on DuckDB and
on PostgreSQL, and checks exact rows, counts and messages; commands that messages print are
run as printed, in a subprocess.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from ownership_project import (
    ROWS,
    Project,
    cli,
    cli_printed,
    csv_metadata,
    csv_source,
    day,
    failure_of,
    plan_hash,
    plan_text,
)
from pandas.testing import assert_frame_equal

from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.warehouse.engine import read_frame_once

JAN5, JAN7, JAN8, JAN9, JAN12 = (day(f"2026-01-{d:02d}") for d in (5, 7, 8, 9, 12))

# Another plan's export: one row a day, 5 to 12 January. W02 (5..11): 7 x 4 key events over
# 7 x 200 sessions; 7 x 1 submits over 7 x 2 starts.
UNIFORM_ROWS = [f"2026-01-{d:02d},google,organic,,/,mobile,200,100,4,2,1" for d in range(5, 13)]

# A second CSV source: 5..11 January, 20 sessions, 2 key events, 1 start and 1 submit a day,
# and one bad row (quarantined).
EXTRA_ROWS = [f"2026-01-{d:02d},bing,cpc,winter,/,desktop,20,10,2,1,1" for d in range(5, 12)] + [
    "2026-01-06,bing,cpc,winter,/x,desktop,xyz,10,2,1,1"
]

FEB_ROWS = [
    "2026-02-02,google,organic,,/,mobile,300,100,6,4,2",
    "2026-02-03,google,organic,,/,mobile,100,50,2,2,1",
]

DAY5 = "where date = date '2026-01-05'"


def _project(tmp_path, url, plan_id="tiny", *, allow_missing_days=False, folder="project"):
    """The tiny plan (one CSV source `export`, `exports/*.csv`) and its January export."""
    project = Project(tmp_path / folder, url, plan_id)
    source = csv_source("export", "exports/*.csv", allow_missing_days=allow_missing_days)
    project.write_plan(plan_text(plan_id, [source]))
    project.write_csv("exports/2026-01.csv", ROWS)
    return project


def _assert_marts_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for name in expected:
        assert len(actual[name]) > 0, name
        assert_frame_equal(actual[name], expected[name], obj=name)


def _run_command(project: Project, first: str, last: str, *flags: str) -> str:
    """The command a message should print, written out here independently of the product."""
    plan = str(project.plan_path)
    return shlex.join(
        ["kpi-pipeline", "run", "--plan", plan, "--from", first, "--to", last, *flags]
    )


@pytest.fixture
def fresh_warehouse_url(warehouse_url, request, tmp_path) -> str:
    """A second, empty warehouse of the same engine as `warehouse_url`."""
    if warehouse_url.startswith("duckdb"):
        return f"duckdb:///{tmp_path / 'alone.duckdb'}"
    server = request.getfixturevalue("postgres_server")
    return server.url_for(server.create_database())


# -- 1. a file that went missing ---------------------------------------------------------------


def test_missing_file_keeps_the_day_and_prints_the_command_that_empties_it(
    warehouse_url, tmp_path, monkeypatch
):
    project = _project(tmp_path, warehouse_url)
    assert project.run(JAN5, JAN12).success
    raw_before = {name: project.table("raw", name, DAY5) for name in ("csv_traffic", "csv_events")}
    # 5 January: newsletter/email (4 starts, 2 submits) and google/organic (6 starts, 3 submits).
    assert (len(raw_before["csv_traffic"]), len(raw_before["csv_events"])) == (2, 4)
    assert project.count("raw", "csv_traffic") == 9  # 10 rows, one quarantined
    marts_before = project.marts()
    assert project.week("conv") == (29.0, 1510.0)

    export = project.root / "exports" / "2026-01.csv"
    export.rename(export.with_name("2026-01.csv.moved"))  # the glob no longer matches it
    # Run with a relative plan path: the printed command must still name the plan absolutely.
    monkeypatch.chdir(tmp_path)
    failed = run_days(Path("project/plan.yaml"), JAN5, JAN5, warehouse_url=warehouse_url)

    accept = _run_command(project, "2026-01-05", "2026-01-05", "--allow-missing")
    message = failure_of(failed, "csv_exports")
    assert message == (
        "source 'export' read no rows for 2026-01-05 from 'exports/*.csv' (no file matches the "
        "glob); kept the 2 row(s) already loaded for those days. This run "
        "changed nothing. If data is late or a file moved, deliver it and re-run; to accept the "
        f"empty days on purpose: {accept}"
    )
    assert set(step_failures(failed)) == {"csv_exports"}
    for name, frame in raw_before.items():
        assert_frame_equal(project.table("raw", name, DAY5), frame, obj=name)
    assert project.count("raw", "csv_traffic") == 9
    _assert_marts_equal(project.marts(), marts_before)

    # The printed command, run as printed from another folder, empties the day.
    printed = message.rsplit("to accept the empty days on purpose: ", 1)[1]
    done = cli_printed(printed, warehouse_url, cwd=tmp_path / "elsewhere")
    assert done.returncode == 0, done.stderr
    assert "materialized 1 day(s) 2026-01-05..2026-01-05" in done.stdout
    assert project.count("raw", "csv_traffic", "date = date '2026-01-05'") == 0
    assert project.count("raw", "csv_events", "date = date '2026-01-05'") == 0
    assert project.count("raw", "csv_traffic") == 7  # the other days were not touched
    # W02 without the 5th: key events 5 + 5 x 1 over sessions 10 + 5 x 100.
    assert project.week("conv") == (10.0, 510.0)
    # Form completion: submits 5 x 1 over starts 5 x 2 (the 6th has neither).
    assert project.week("task") == (5.0, 10.0)


def test_a_source_that_allows_missing_days_empties_them_without_the_flag(warehouse_url, tmp_path):
    project = _project(tmp_path, warehouse_url, allow_missing_days=True)
    assert project.run(JAN5, JAN12).success
    export = project.root / "exports" / "2026-01.csv"
    export.rename(export.with_name("2026-01.csv.moved"))

    result = project.run(JAN5)

    assert result.success, step_failures(result)
    metadata = csv_metadata(result)
    assert (metadata["days_without_rows"], metadata["emptied_days"]) == (1, 1)
    assert (metadata["files_matched"], metadata["files_parsed"]) == (0, 0)
    assert "source 'export': emptied 2026-01-05 (missing days allowed)" in project.warnings(result)
    assert project.count("raw", "csv_traffic", "date = date '2026-01-05'") == 0
    assert project.count("raw", "csv_traffic") == 7
    assert project.week("conv") == (10.0, 510.0)


# -- 2. plans sharing a warehouse --------------------------------------------------------------


def test_interleaved_plans_each_equal_the_plan_run_alone(
    warehouse_url, fresh_warehouse_url, tmp_path
):
    # Both plans have a source `export` reading `exports/*.csv` next to their own plan file.
    alpha = _project(tmp_path, warehouse_url, "alpha", folder="alpha")
    beta = _project(tmp_path, warehouse_url, "beta", folder="beta")
    beta.root.joinpath("exports", "2026-01.csv").unlink()
    first_delivery = beta.write_csv("exports/first.csv", ROWS)

    assert alpha.run(JAN5, JAN8).success
    assert beta.run(JAN5, JAN12).success
    last_alpha = alpha.run(JAN9, JAN12)
    assert last_alpha.success
    first_delivery.unlink()  # beta's data is delivered again, different, under a new name
    beta.write_csv("exports/second.csv", UNIFORM_ROWS)
    last_beta = beta.run(JAN5, JAN12)
    assert last_beta.success, step_failures(last_beta)

    alpha_alone = Project(alpha.root, fresh_warehouse_url, "alpha")
    beta_alone = Project(beta.root, fresh_warehouse_url, "beta")
    assert alpha_alone.run(JAN5, JAN12).success
    assert beta_alone.run(JAN5, JAN12).success

    _assert_marts_equal(alpha.marts(), alpha_alone.marts())
    _assert_marts_equal(beta.marts(), beta_alone.marts())
    assert alpha.week("conv") == (29.0, 1510.0)
    assert beta.week("conv") == (28.0, 1400.0)
    assert (alpha.count("raw", "csv_traffic"), beta.count("raw", "csv_traffic")) == (9, 8)

    plans = read_frame_once(
        warehouse_url,
        "select plan_id, plan_hash, plan_path, id_declared, schema_prefix, last_run_id "
        "from meta.plans order by plan_id",
    )
    assert [tuple(row) for row in plans.itertuples(index=False)] == [
        (
            "alpha",
            plan_hash(alpha.plan_path),
            str(alpha.plan_path),
            True,
            "alpha_",
            last_alpha.run_id,
        ),
        ("beta", plan_hash(beta.plan_path), str(beta.plan_path), True, "beta_", last_beta.run_id),
    ]


# -- 3. a source removed from the plan ---------------------------------------------------------


def test_a_removed_source_stops_counting_and_prune_deletes_its_rows(
    warehouse_url, fresh_warehouse_url, tmp_path
):
    project = Project(tmp_path / "shop", warehouse_url, "shop")
    export = csv_source("export", "exports/*.csv")
    project.write_plan(plan_text("shop", [export, csv_source("extra", "extra/*.csv")]))
    project.write_csv("exports/2026-01.csv", ROWS)
    project.write_csv("extra/2026-01.csv", EXTRA_ROWS)
    assert project.run(JAN5, JAN12).success
    # W02 with both sources: key events 29 + 7 x 2 over sessions 1510 + 7 x 20.
    assert project.week("conv") == (43.0, 1650.0)

    project.write_plan(plan_text("shop", [export]))  # `extra` is no longer declared
    rerun = project.run(JAN5, JAN12)
    assert rerun.success, step_failures(rerun)

    only_export = Project(project.root, fresh_warehouse_url, "shop")
    assert only_export.run(JAN5, JAN12).success
    assert_frame_equal(
        project.table("marts", "kpi_values"), only_export.table("marts", "kpi_values")
    )
    assert project.week("conv") == (29.0, 1510.0)
    # The undeclared source's rows are still in raw: 7 traffic rows, 7 x 2 non-zero events,
    # its quarantined row, its manifest entry and the 7 days its file covered.
    extra = "source_id = 'extra'"
    counts = {t: project.count("raw", t, extra) for t in ("csv_traffic", "csv_events")}
    counts |= {t: project.count("raw", t, extra) for t in ("quarantine", "file_manifest")}
    counts |= {"source_days": project.count("raw", "source_days", extra)}
    assert counts == {
        "csv_traffic": 7,
        "csv_events": 14,
        "quarantine": 1,
        "file_manifest": 1,
        "source_days": 7,
    }
    export_counts = {t: project.count("raw", t, "source_id = 'export'") for t in counts}

    def lines(verb: str, total: int) -> list[str]:
        return [
            f"{verb} {n} row(s) of undeclared source 'extra' from shop_raw.{table}"
            for table, n in counts.items()
        ] + [f"plan 'shop': {verb} {total} row(s) of sources the plan no longer declares"]

    plan_arg = ["--plan", str(project.plan_path)]
    dry = cli(["prune", *plan_arg, "--dry-run"], warehouse_url, cwd=tmp_path / "elsewhere")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == lines("would delete", 30)
    assert {t: project.count("raw", t, extra) for t in counts} == counts

    pruned = cli(["prune", *plan_arg], warehouse_url, cwd=tmp_path / "elsewhere")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines() == lines("deleted", 30)
    assert {t: project.count("raw", t, extra) for t in counts} == dict.fromkeys(counts, 0)
    assert {t: project.count("raw", t, "source_id = 'export'") for t in counts} == export_counts
    assert export_counts == {
        "csv_traffic": 9,
        "csv_events": 14,
        "quarantine": 1,
        "file_manifest": 1,
        "source_days": 8,
    }

    again = cli(["prune", *plan_arg], warehouse_url, cwd=tmp_path / "elsewhere")
    assert again.stdout.splitlines() == [
        "plan 'shop': deleted 0 row(s) of sources the plan no longer declares"
    ]


# -- 4. a bad file outside the run's days ------------------------------------------------------


def test_a_bad_file_outside_the_run_warns_and_fails_only_runs_of_its_days(warehouse_url, tmp_path):
    project = _project(tmp_path, warehouse_url)
    feb = project.write_csv("exports/2026-02.csv", FEB_ROWS)
    feb2, feb3 = day("2026-02-02"), day("2026-02-03")
    assert project.run(JAN5, feb3).success
    jan7 = project.table("raw", "csv_traffic", "where date = date '2026-01-07'")
    assert len(jan7) == 1
    assert project.count("raw", "csv_traffic", "date >= date '2026-02-01'") == 2

    feb.write_text("date,source\n2026-02-02,google\n", encoding="utf-8")  # a bad header
    result = project.run(JAN7)

    assert result.success, step_failures(result)
    metadata = csv_metadata(result)
    # The changed file is opened (to learn its days) but cannot be read: nothing of it loads.
    assert (metadata["files_matched"], metadata["files_parsed"]) == (2, 1)
    assert metadata["unreadable_files"] == 1
    prefix = f"source 'export': cannot read {feb}: "
    (warning,) = [w for w in project.warnings(result) if w.startswith(prefix)]
    error = warning.removeprefix(prefix)
    assert error.startswith(f"{feb}:1: the header does not match")
    assert "missing medium (one of: medium, session_medium" in error
    assert_frame_equal(project.table("raw", "csv_traffic", "where date = date '2026-01-07'"), jan7)
    assert project.week("conv") == (29.0, 1510.0)
    assert project.count("raw", "csv_traffic", "date >= date '2026-02-01'") == 2  # kept
    manifest = project.read(
        "select first_day, last_day, error from {raw}.file_manifest where path = :path",
        {"path": str(feb)},
    )
    assert [(r.first_day, r.last_day) for r in manifest.itertuples()] == [(feb2, feb3)]
    assert manifest.error.iloc[0] == error

    failed = project.run(feb2)
    message = failure_of(failed, "csv_exports")
    assert message.startswith(f"{feb}:1: the header does not match")  # names the file
    assert message == (
        f"{error.rstrip('.')}. The file held 2026-02-02..2026-02-03 when it last read well, "
        "which this run covers. This run changed nothing: fix or remove the file, then re-run: "
        + _run_command(project, "2026-02-02", "2026-02-02")
    )
    assert project.count("raw", "csv_traffic", "date >= date '2026-02-01'") == 2


# -- 5. only the files covering the run's days are parsed --------------------------------------


def test_a_one_day_rerun_parses_only_the_file_that_covers_it(tmp_path):
    project = Project(tmp_path / "year", f"duckdb:///{tmp_path / 'kpi.duckdb'}", "year")
    project.write_plan(
        plan_text("year", [csv_source("export", "exports/*.csv")], history_start="2025-01-01")
    )
    files = {
        month: project.write_csv(
            f"exports/2025-{month:02d}.csv",
            [f"2025-{month:02d}-{d:02d},google,organic,,/,mobile,100,50,1,2,1" for d in (5, 6)],
        )
        for month in range(1, 13)
    }
    first = project.run(day("2025-01-05"), day("2025-12-06"))
    assert first.success, step_failures(first)
    assert csv_metadata(first)["files_parsed"] == 12
    assert project.count("raw", "csv_traffic") == 24

    rerun = project.run(day("2025-03-05"))

    assert rerun.success, step_failures(rerun)
    metadata = csv_metadata(rerun)
    assert metadata["files_matched"] == 12
    assert metadata["files_parsed"] == 1
    assert metadata["files_skipped_unchanged"] == 11
    assert metadata["bytes_parsed"] == files[3].stat().st_size
    assert metadata["skipped_duplicate_files"] == 0
    assert project.count("raw", "csv_traffic") == 24


# -- 6. a re-delivered copy ---------------------------------------------------------------------


def test_a_redelivered_copy_is_read_once(warehouse_url, tmp_path):
    project = _project(tmp_path, warehouse_url)
    assert project.run(JAN5, JAN12).success
    marts_before = project.marts()
    original = project.root / "exports" / "2026-01.csv"
    # Same bytes under a name that sorts before the original.
    shutil.copyfile(original, original.with_name("2026-01-resent.csv"))

    rerun = project.run(JAN5, JAN12)

    assert rerun.success, step_failures(rerun)
    metadata = csv_metadata(rerun)
    assert (metadata["files_matched"], metadata["files_parsed"]) == (2, 1)
    assert metadata["skipped_duplicate_files"] == 1
    _assert_marts_equal(project.marts(), marts_before)
    assert project.week("conv") == (29.0, 1510.0)
    assert project.count("raw", "csv_traffic") == 9
    assert project.count("raw", "quarantine") == 1


# -- 7. default plan ids -----------------------------------------------------------------------


def _same_name_plans(tmp_path, url) -> tuple[Project, Project]:
    """Two different plans, both `plan.yaml` without `id:`, in two folders."""
    first = Project(tmp_path / "shop_a", url, "plan")
    first.write_plan(plan_text(None))
    first.write_csv("exports/2026-01.csv", ROWS)
    second = Project(tmp_path / "shop_b", url, "plan")
    second.write_plan(plan_text(None, organization="Other Shop"))
    second.write_csv("exports/2026-01.csv", UNIFORM_ROWS)
    return first, second


def _collision_message(first: Project, second: Project) -> str:
    return (
        f"plan id 'plan' belongs to {first.plan_path}, which last ran against this warehouse; "
        f"{second.plan_path} would write into the same schemas (plan_raw, ...). Give this plan "
        "its own id (a top-level `id:` key), or if it is the same plan moved, add `id: plan` "
        "to it."
    )


def _plans(url: str) -> list[tuple]:
    frame = read_frame_once(
        url, "select plan_id, plan_path, id_declared from meta.plans order by plan_id"
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def test_a_default_plan_id_taken_by_another_file_is_refused_until_it_has_its_own_id(
    warehouse_url, tmp_path
):
    first, second = _same_name_plans(tmp_path, warehouse_url)
    assert first.run(JAN5, JAN12).success
    marts_before = first.marts()

    failed = second.run(JAN5, JAN12)

    assert failure_of(failed, "plan_tables") == _collision_message(first, second)
    _assert_marts_equal(first.marts(), marts_before)
    assert _plans(warehouse_url) == [("plan", str(first.plan_path), False)]

    second.write_plan(plan_text("other", organization="Other Shop"))
    second.plan_id = "other"
    result = second.run(JAN5, JAN12)

    assert result.success, step_failures(result)
    assert second.week("conv") == (28.0, 1400.0)
    assert second.count("raw", "csv_traffic") == 8
    assert _plans(warehouse_url) == [
        ("other", str(second.plan_path), True),
        ("plan", str(first.plan_path), False),
    ]
    _assert_marts_equal(first.marts(), marts_before)
    assert first.week("conv") == (29.0, 1510.0)


def test_a_refused_plan_writes_nothing_into_the_schemas_it_was_refused(warehouse_url, tmp_path):
    first, second = _same_name_plans(tmp_path, warehouse_url)
    assert first.run(JAN5, JAN12).success
    raw_tables = ("csv_traffic", "csv_events", "file_manifest")
    raw_before = {name: first.table("raw", name) for name in raw_tables}

    failed = second.run(JAN5, JAN12)

    assert failure_of(failed, "plan_tables") == _collision_message(first, second)
    raw_after = {name: first.table("raw", name) for name in raw_tables}
    # The first plan's next daily run (one day) rebuilds its marts from its raw tables.
    daily = first.run(JAN12)
    assert daily.success, step_failures(daily)

    # The refusal must cover the whole run: the refused plan's export (same source id
    # `export`, same days, same schema `plan_raw`) must not replace the first plan's rows.
    first_export = str(first.root.joinpath("exports", "2026-01.csv").resolve())
    assert set(raw_after["csv_traffic"].file) == {first_export}, (
        "the refused plan's csv_exports step wrote its rows into the first plan's schema "
        "plan_raw (csv_exports does not wait for the plan-id check in plan_tables)"
    )
    for name, frame in raw_before.items():
        assert_frame_equal(raw_after[name], frame, obj=f"plan_raw.{name}")
    # Else the first plan's week W02 is the refused plan's 28 / 1400, not its own 29 / 1510.
    assert first.week("conv") == (29.0, 1510.0)
