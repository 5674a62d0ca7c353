"""The HTML report from a real two-week demo run: its numbers are the warehouse's, on DuckDB
and PostgreSQL; the daily job writes it; the CLI writes it and fails in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.reports.html import render_report, report_dir
from kpi_pipeline.reports.html.frames import SCORE_COLUMNS
from kpi_pipeline.reports.html.page import DATA_ELEMENT_ID
from kpi_pipeline.warehouse.engine import Warehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The demo project helper lives beside the warehouse tests.
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "warehouse"))
from demo_project import DemoProject, step_failures  # noqa: E402


def embedded_scores(html: str) -> pd.DataFrame:
    """The JSON data block of a report as a frame (columns as embedded)."""
    match = re.search(
        rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)</script>', html, re.S
    )
    assert match is not None, "the report embeds no data"
    data = json.loads(match.group(1).replace("<\\/", "</"))
    return pd.DataFrame(data["rows"], columns=data["columns"])


def as_json_cells(frame: pd.DataFrame) -> list[list]:
    """Rows of a warehouse frame written as the report embeds them: ISO dates, None for NaN."""
    rows = []
    for record in frame.to_dict("records"):
        row = []
        for column in SCORE_COLUMNS:
            value = record[column]
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                row.append(None)
            elif column in ("period_start", "period_end", "as_of_date"):
                row.append(pd.Timestamp(value).date().isoformat())
            elif column == "is_partial":
                row.append(bool(value))
            else:
                row.append(value.item() if hasattr(value, "item") else value)
        rows.append(row)
    return rows


def test_report_numbers_equal_kpi_scores_and_the_daily_job_writes_it(
    warehouse_url, tmp_path, monkeypatch
):
    if warehouse_url.startswith("postgresql"):
        # A server warehouse writes under the working directory by default: not in a test.
        monkeypatch.setenv("KPI_REPORT_DIR", str(tmp_path / "pg-reports"))
        written = tmp_path / "pg-reports" / "demo.html"
    else:
        monkeypatch.delenv("KPI_REPORT_DIR", raising=False)
        written = tmp_path / "reports" / "demo.html"  # beside the DuckDB file
    project = DemoProject.create(tmp_path, warehouse_url)
    result = project.run()
    assert result.success, step_failures(result)
    # The report asset ran after scoring and wrote the page where the docs say.
    assert written.is_file()
    assert "<svg" in written.read_text(encoding="utf-8")

    loaded = load_plan(project.plan_path)
    warehouse = Warehouse.from_url(warehouse_url, loaded.plan_id)
    try:
        report, html = render_report(warehouse, loaded)
    finally:
        warehouse.dispose()
    table = project.read(
        f"select {', '.join(SCORE_COLUMNS)} from marts.kpi_scores where segment_type = 'all' "
        "order by kpi_id, grain, period_start"
    )
    embedded = embedded_scores(html).sort_values(["kpi_id", "grain", "period_start"])
    assert list(embedded.columns) == list(SCORE_COLUMNS)
    # Exactly the table's rows and values: floats compared exactly, not approximately.
    assert embedded.astype(object).where(embedded.notna(), None).values.tolist() == (
        as_json_cells(table)
    )
    assert len(embedded) == len(table) > 0

    # Two weeks of August 2026: the data-health section names the last loaded day.
    assert report.as_of.isoformat() == "2026-08-16"
    sources = re.search(r'<table id="health-sources">.*?</table>', html, re.S).group(0)
    assert "<td>ga4_export</td><td>2026-08-03</td><td>2026-08-16</td>" in sources
    # The demo's broken row of 9 August is quarantined and counted.
    quarantined = project.read("select count(*) as n from raw.quarantine")["n"].iloc[0]
    assert quarantined >= 1
    assert f"Quarantined rows: {quarantined:,}" in html


def test_report_objectives_in_priority_order_with_days_left(tmp_path):
    project = DemoProject.create(tmp_path, f"duckdb:///{tmp_path / 'kpi.duckdb'}")
    assert project.run().success
    loaded = load_plan(project.plan_path)
    warehouse = Warehouse.from_url(project.warehouse_url, loaded.plan_id)
    try:
        _, html = render_report(warehouse, loaded)
    finally:
        warehouse.dispose()
    titles = re.findall(r'<section class="objective" id="objective-([a-z_]+)">', html)
    assert titles == ["sell_more_online", "engage_visitors", "make_quote_requests_easy"]
    # 16 August 2026 to 31 March 2027 (227 days) and to 31 December 2026 (137 days).
    assert "deadline 31 March 2027 · 227 days left" in html
    assert "deadline 31 December 2026 · 137 days left" in html
    # The sentence of the latest closed week of the conversion rate, from the table's row.
    row = project.read(
        "select * from marts.kpi_scores where kpi_id = 'online_conversion_rate' and grain = "
        "'week' and segment_type = 'all' and not is_partial order by period_start desc limit 1"
    ).iloc[0]
    expected = f"{row['value'] * 100:.2f} % vs {row['expected'] * 100:.2f} % expected"
    assert expected in html
    # Tactics are ranked by their gap to the path, worst first, as tactic_ranking says.
    ranking = project.read(
        "select tactic from marts.tactic_ranking where kpi_id = 'online_conversion_rate' "
        "and grain = 'week' order by rank"
    )["tactic"].tolist()
    table = re.search(
        r'<table class="tactics" id="chart-online_conversion_rate-week-tactics">.*?</table>',
        html,
        re.S,
    ).group(0)
    assert re.findall(r'<th scope="row">([a-z_]+)</th>', table) == ranking


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        timeout=300,
    )


def test_report_command_writes_the_file_and_fails_in_one_line_without_scores(tmp_path):
    url = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    project = DemoProject.create(tmp_path, url)
    env = {"KPI_WAREHOUSE_URL": url}
    duckdb.connect(str(tmp_path / "kpi.duckdb")).close()  # a warehouse, but nothing scored
    missing = run_cli("report", "--plan", str(project.plan_path), env=env)
    assert missing.returncode == 1
    assert missing.stdout == ""
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1, missing.stderr
    assert "plan 'demo'" in lines[0] and str(tmp_path / "kpi.duckdb") in lines[0]

    assert project.run().success
    out = tmp_path / "out"
    written = run_cli("report", "--plan", str(project.plan_path), "--out", str(out), env=env)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == str(out / "demo.html")
    assert (out / "demo.html").read_text(encoding="utf-8").startswith("<!doctype html>")


def test_reports_go_beside_a_duckdb_warehouse_unless_configured():
    assert report_dir("duckdb:////data/wh/kpi.duckdb") == Path("/data/wh/reports")
    assert report_dir("duckdb:///warehouse/kpi.duckdb") == Path("warehouse/reports")
    assert report_dir("postgresql+psycopg://u@127.0.0.1/db") == Path("reports")
    assert report_dir("duckdb:///warehouse/kpi.duckdb", "/srv/out") == Path("/srv/out")
