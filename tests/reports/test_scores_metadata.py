"""kpi_scores materializations carry each KPI's latest closed value (numeric, for the Plots
tab) and a markdown preview: the pure helpers on hand rows, then two real runs of the job."""

import datetime as dt
import math
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd

from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.reports.scorecard import latest_closed_rows, latest_values, markdown_preview
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.sources.demo_data import write_demo_exports
from kpi_pipeline.warehouse.engine import read_frame_once

DEMO_PLAN = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"
# Two ISO weeks of the demo (as tests/warehouse/demo_project.py): W32 and W33 of 2026.
FIRST_DAY, LAST_DAY = dt.date(2026, 8, 3), dt.date(2026, 8, 16)


def _score(kpi_id, grain, start, value, *, partial=False, segment="all", priority=1):
    row = dict.fromkeys(KPI_SCORES.column_names)
    row.update(
        kpi_id=kpi_id,
        kpi_label=kpi_id.replace("_", " ").capitalize(),
        kind="volume" if kpi_id == "quotes" else "conversion_rate",
        objective_priority=priority,
        objective_title="Sell",
        grain=grain,
        period_start=pd.Timestamp(start),
        period_label=str(start),
        segment_type="all" if segment == "all" else "tactic",
        segment=segment,
        value=value,
        expected=value,
        target=value,
        status="on_track",
        is_partial=partial,
    )
    return row


def test_latest_values_from_hand_rows():
    scores = pd.DataFrame(
        [
            _score("rate", "week", "2026-08-03", 0.021),
            _score("rate", "week", "2026-08-10", 0.023),  # latest closed week
            _score("rate", "week", "2026-08-17", 0.040, partial=True),  # partial: not it
            _score("rate", "week", "2026-08-10", 0.500, segment="email"),  # a tactic: not it
            _score("rate", "day", "2026-08-16", 0.019),
            _score("quotes", "month", "2026-07-01", 431.0, priority=3),
            _score("empty", "month", "2026-07-01", float("nan"), priority=2),  # no value
        ],
        columns=KPI_SCORES.column_names,
    )
    latest = latest_closed_rows(scores)
    # Scorecard order: objective priority, KPI id, grain from day to quarter.
    assert list(zip(latest["kpi_id"], latest["grain"], strict=True)) == [
        ("rate", "day"),
        ("rate", "week"),
        ("empty", "month"),
        ("quotes", "month"),
    ]
    assert latest_values(latest) == {
        "latest/rate/day": 0.019,
        "latest/rate/week": 0.023,
        "latest/quotes/month": 431.0,
    }
    assert markdown_preview(latest).splitlines()[3] == (
        "| 1. Sell | Rate | week | 2026-08-10 | 2.30% | 2.30% | 2.30% | on_track |"
    )
    nothing_closed = latest_closed_rows(scores[scores["is_partial"]])
    assert markdown_preview(nothing_closed) == (
        "No closed period yet: every period scored so far is partial."
    )


def _materializations(instance, key):
    records = instance.fetch_materializations(key, limit=10, ascending=True).records
    return [record.asset_materialization.metadata for record in records]


def test_kpi_scores_materializations_chart_the_latest_values(tmp_path):
    plan_path = tmp_path / "plan_config" / "demo.yaml"
    plan_path.parent.mkdir()
    shutil.copy(DEMO_PLAN, plan_path)  # reads ../data/demo/ relative to itself
    write_demo_exports(tmp_path / "data" / "demo", FIRST_DAY, LAST_DAY, 7)
    url = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    instance = dg.DagsterInstance.ephemeral()
    first_week_end = FIRST_DAY + dt.timedelta(days=6)  # Sunday 9 August: W32 closed
    for first, last in ((FIRST_DAY, first_week_end), (first_week_end + dt.timedelta(1), LAST_DAY)):
        result = run_days(plan_path, first, last, warehouse_url=url, instance=instance)
        assert result.success, step_failures(result)

    first, second = _materializations(instance, table_key(KPI_SCORES))
    # Two weeks of August: days and weeks close; August, its quarter, and every month-only
    # KPI have no closed period yet, so no series for them.
    series = {
        "latest/online_conversion_rate/day",
        "latest/online_conversion_rate/week",
        "latest/engagement_rate/week",
        "latest/quote_form_completion_rate/week",
    }
    assert {key for key in second if key.startswith("latest/")} == series
    assert {key for key in first if key.startswith("latest/")} == series

    # The numbers are the table's: the latest closed day and week of each run.
    stored = read_frame_once(
        url,
        "select kpi_id, grain, period_label, value from marts.kpi_scores "
        "where segment_type = 'all' and period_label in ('2026-W32', '2026-W33', '2026-08-16')",
        plan_id="demo",
    )
    value = {(r.kpi_id, r.grain, r.period_label): r.value for r in stored.itertuples()}
    for kpi_id, grain in (key.split("/")[1:] for key in series):
        entry = second[f"latest/{kpi_id}/{grain}"]
        assert isinstance(entry, dg.FloatMetadataValue)
        label = "2026-08-16" if grain == "day" else "2026-W33"
        assert math.isclose(entry.value, value[kpi_id, grain, label], rel_tol=1e-12)
    # The first run's week was W32: the series has two different points.
    w32 = first["latest/online_conversion_rate/week"].value
    assert math.isclose(w32, value["online_conversion_rate", "week", "2026-W32"], rel_tol=1e-12)
    assert w32 != second["latest/online_conversion_rate/week"].value

    preview = second["preview"]
    assert isinstance(preview, dg.MarkdownMetadataValue)
    lines = preview.value.splitlines()
    assert lines[0].startswith("| objective | KPI | grain | period | value | expected | target |")
    assert [[cell.strip() for cell in line.split("|")[2:5]] for line in lines[2:]] == [
        ["Online conversion rate", "day", "2026-08-16"],
        ["Online conversion rate", "week", "2026-W33"],
        ["Engagement rate", "week", "2026-W33"],
        ["Quote form completion rate", "week", "2026-W33"],
    ]
    conversion_week = value["online_conversion_rate", "week", "2026-W33"]
    assert f"| {conversion_week * 100:.2f}% |" in lines[3]
