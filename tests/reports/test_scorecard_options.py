"""`kpi-pipeline scorecard` options on a hand-made kpi_scores table, through the real CLI.

The table holds the demo plan's conversion rate (five closed months, a partial one, a tactic
segment, one closed week) and quote requests (two flat closed months): every number the
command prints is traceable to a row below.
"""

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.reports.scorecard import SCORE_FIELDS, sparkline
from kpi_pipeline.warehouse.engine import Warehouse, read_frame_once

DEFAULT_PLAN = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"

CONVERSION = {
    "kpi_id": "online_conversion_rate",
    "kpi_label": "Online conversion rate",
    "kind": "conversion_rate",
    "direction": "increase",
    "objective_id": "sell_more_online",
    "objective_title": "Sell more online",
    "objective_priority": 1,
    "target": 0.025,
}
QUOTES = {
    "kpi_id": "quote_requests",
    "kpi_label": "Quote requests per period",
    "kind": "volume",
    "direction": "increase",
    "objective_id": "make_quote_requests_easy",
    "objective_title": "Make group-order quote requests easy",
    "objective_priority": 3,
    "target": 420.0,
}


def _row(kpi, grain, start, end, label, value, **extra):
    row = dict.fromkeys(KPI_SCORES.column_names)
    row.update(kpi)
    row.update(
        grain=grain,
        period_start=pd.Timestamp(start),
        period_end=pd.Timestamp(end),
        period_label=label,
        segment_type="all",
        segment="all",
        value=value,
        is_partial=False,
        status="on_track",
    )
    row.update(extra)
    return row


def _month(kpi, month, value, **extra):
    start = dt.date(2026, month, 1)
    end = (pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date()
    return _row(kpi, "month", start, end, f"2026-{month:02d}", value, **extra)


# The latest closed month of the conversion rate, with every column the scorecard shows.
SEPTEMBER = {
    "numerator": 2600.0,
    "denominator": 100000.0,
    "expected": 0.0234,
    "tolerance_band": 0.00117,
    "status": "at_risk",
    "ci_low": 0.0250,
    "ci_high": 0.0270,
    "forecast_at_deadline": 0.0241,
    "forecast_low": 0.0230,
    "forecast_high": 0.0252,
    "projected_status": "at_risk",
}

ROWS = [
    _month(CONVERSION, 5, 0.020),
    _month(CONVERSION, 6, 0.022),
    _month(CONVERSION, 7, 0.021),
    _month(CONVERSION, 8, 0.024),
    _month(CONVERSION, 9, 0.026, **SEPTEMBER),
    # Partial: never the latest closed period, never in the trend.
    _month(CONVERSION, 10, 0.030, is_partial=True, status="on_track"),
    # A tactic segment: not the whole site.
    _month(CONVERSION, 9, 0.5, segment_type="tactic", segment="email"),
    _row(CONVERSION, "week", "2026-09-21", "2026-09-27", "2026-W39", 0.0255, expected=0.0233),
    _month(QUOTES, 8, 400.0, numerator=400.0, expected=390.0, status="achieved"),
    _month(
        QUOTES,
        9,
        400.0,
        numerator=400.0,
        expected=395.4,
        status="achieved",
        hold_reason="provisional",
        forecast_at_deadline=1234.5,
        forecast_low=1100.0,
        forecast_high=1369.0,
        projected_status="achieved",
    ),
]


@pytest.fixture(scope="module")
def warehouse_url(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('scorecard') / 'kpi.duckdb'}"
    warehouse = Warehouse.from_url(url, "demo")
    try:
        warehouse.rewrite_table(KPI_SCORES, pd.DataFrame(ROWS, columns=KPI_SCORES.column_names))
    finally:
        warehouse.dispose()
    return url


def scorecard(url, *options):
    env = {**os.environ, "KPI_WAREHOUSE_URL": url}
    env.pop("KPI_PLAN", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kpi_pipeline.cli",
            "scorecard",
            "--plan",
            str(DEFAULT_PLAN),
            *options,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def table_rows(url, where):
    frame = read_frame_once(
        url,
        f"select {', '.join(SCORE_FIELDS)} from marts.kpi_scores where segment_type = 'all' "
        f"and {where} order by objective_priority, kpi_id",
        plan_id="demo",
    )
    return frame.to_dict("records")


@pytest.mark.parametrize(
    ("values", "bars", "why"),
    [
        ([0.022, 0.021, 0.024, 0.026], "▂▁▅█", "(v - 0.021) / 0.005 x 7: 1.4, 0, 4.2, 7"),
        ([400.0, 400.0], "▄▄", "flat: mid-height, not the floor"),
        ([1.0, None, 3.0], "▁ █", "a missing period is a gap"),
        ([None], " ", "nothing to scale"),
        ([], "", "no closed period"),
    ],
)
def test_sparkline(values, bars, why):
    assert sparkline(values) == bars, why


def test_default_table_is_todays_layout(warehouse_url):
    result = scorecard(warehouse_url)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "objective", "KPI", "grain", "period", "value", "expected", "target", "status", "hold"
    ]  # fmt: skip
    # Latest closed: W39 and September (October is partial), week before month.
    assert [" ".join(line.split()) for line in lines[2:]] == [
        "1. Sell more online Online conversion rate week 2026-W39 2.55% 2.33% 2.50% on_track",
        "1. Sell more online Online conversion rate month 2026-09 2.60% 2.34% 2.50% at_risk",
        "3. Make group-order quote requests easy Quote requests per period month 2026-09 400 "
        "395 420 achieved held: provisional",
    ]


def test_kpi_grain_periods_wide_table(warehouse_url):
    result = scorecard(
        warehouse_url, "--kpi", "online_conversion_rate", "--grain", "month", "--periods", "4",
        "--wide",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "objective            KPI                     grain  period   value    interval  "
        "expected  target  status   forecast  forecast interval  projected  trend",
        "-------------------  ----------------------  -----  -------  -----  ----------  "
        "--------  ------  -------  --------  -----------------  ---------  -----",
        "1. Sell more online  Online conversion rate  month  2026-09  2.60%  2.50–2.70%  "
        "   2.34%   2.50%  at_risk     2.41%         2.30–2.52%  at_risk    ▂▁▅█",
    ]


def test_kpi_list_and_repeat_select_the_same(warehouse_url):
    both = scorecard(warehouse_url, "--kpi", "quote_requests,online_conversion_rate")
    repeated = scorecard(
        warehouse_url, "--kpi", "quote_requests", "--kpi", "online_conversion_rate"
    )
    assert both.returncode == repeated.returncode == 0
    assert both.stdout == repeated.stdout
    only_quotes = scorecard(warehouse_url, "--kpi", "quote_requests", "--format", "json")
    assert [row["kpi_id"] for row in json.loads(only_quotes.stdout)] == ["quote_requests"]


def test_json_rows_are_the_table_values(warehouse_url):
    result = scorecard(warehouse_url, "--format", "json", "--grain", "month", "--periods", "3")
    assert (result.returncode, result.stderr) == (0, "")
    rows = json.loads(result.stdout)
    expected = table_rows(warehouse_url, "period_label = '2026-09' and grain = 'month'")
    assert len(rows) == len(expected) == 2
    for row, stored in zip(rows, expected, strict=True):
        for field in SCORE_FIELDS:
            value = stored[field]
            if isinstance(value, dt.date):
                value = value.isoformat()
            elif pd.isna(value):
                value = None
            assert row[field] == value, field
    conversion, quotes = rows
    # Hand-written above: September's columns, and the last three closed months.
    assert (conversion["value"], conversion["ci_low"], conversion["ci_high"]) == (
        0.026, 0.025, 0.027
    )  # fmt: skip
    assert (conversion["forecast_at_deadline"], conversion["projected_status"]) == (
        0.0241, "at_risk"
    )  # fmt: skip
    assert conversion["trend"] == [0.021, 0.024, 0.026]
    assert conversion["sparkline"] == "▁▅█"  # (v - 0.021) / 0.005 x 7: 0, 4.2, 7
    assert conversion["deadline"] == "2027-03-31"
    assert conversion["summary"] == (
        "2.60 % vs 2.34 % expected; at risk; on pace to reach 2.41 % of 2.50 % by "
        "31 March 2027 (projected: at risk)"
    )
    assert (quotes["trend"], quotes["sparkline"]) == ([400.0, 400.0], "▄▄")
    assert quotes["hold_reason"] == "provisional"
    assert quotes["period_start"] == "2026-09-01"


def test_csv_rows_are_the_table_values(warehouse_url):
    result = scorecard(warehouse_url, "--format", "csv", "--periods", "2")
    assert (result.returncode, result.stderr) == (0, "")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = table_rows(
        warehouse_url, "((grain = 'month' and period_label = '2026-09') or grain = 'week')"
    )
    # Table order: by priority and KPI, then grain (week before month).
    expected = sorted(expected, key=lambda r: (r["objective_priority"], r["kpi_id"], r["grain"]))
    assert [(r["kpi_id"], r["grain"]) for r in rows] == [
        ("online_conversion_rate", "week"),
        ("online_conversion_rate", "month"),
        ("quote_requests", "month"),
    ]
    assert [(r["kpi_id"], r["grain"]) for r in expected] == [
        ("online_conversion_rate", "month"),
        ("online_conversion_rate", "week"),
        ("quote_requests", "month"),
    ]
    by_key = {(r["kpi_id"], r["grain"]): r for r in expected}
    for row in rows:
        stored = by_key[row["kpi_id"], row["grain"]]
        for field in SCORE_FIELDS:
            value = stored[field]
            if isinstance(value, dt.date):
                assert row[field] == value.isoformat(), field
            elif value is None or (isinstance(value, float) and pd.isna(value)):
                assert row[field] == "", field
            elif isinstance(value, float):
                assert float(row[field]) == value, field  # exact: floats written round-trip
            else:
                assert row[field] == str(value), field
    assert [(r["trend"], r["sparkline"]) for r in rows] == [
        ("0.0255", "▄"),  # one closed week: flat
        ("0.024;0.026", "▁█"),
        ("400.0;400.0", "▄▄"),
    ]


def test_markdown(warehouse_url):
    result = scorecard(warehouse_url, "--format", "markdown", "--kpi", "quote_requests", "--wide")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "| objective | KPI | grain | period | value | interval | expected | target | status | "
        "forecast | forecast interval | projected | hold |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
        "| 3. Make group-order quote requests easy | Quote requests per period | month | 2026-09 "
        "| 400 | - | 395 | 420 | achieved | 1,234 | 1,100–1,369 | achieved | held: provisional |",
    ]


def test_unknown_kpi_is_one_line_listing_the_valid_ids(warehouse_url):
    result = scorecard(warehouse_url, "--kpi", "online_conversion_rate,conversion")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "unknown KPI id 'conversion' in plan 'demo'; valid ids: online_conversion_rate, "
        "engagement_rate, bounce_rate, quote_form_completion_rate, quote_requests"
    ]


def test_grain_the_kpi_is_not_measured_by(warehouse_url):
    result = scorecard(warehouse_url, "--kpi", "quote_requests", "--grain", "week")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "no KPI of quote_requests is measured by week in plan 'demo' (their grains: month)\n"
    )


def test_no_closed_period_of_the_grain_yet(warehouse_url):
    result = scorecard(warehouse_url, "--grain", "quarter")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "no closed quarter yet for online_conversion_rate, engagement_rate, bounce_rate, "
        "quote_form_completion_rate, quote_requests in plan 'demo': every period scored so far "
        "is still partial\n"
    )


def test_no_scores_yet_names_warehouse_plan_and_command(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()  # a warehouse no run has written scores into
    url = f"duckdb:///{path}"
    result = scorecard(url)
    assert (result.returncode, result.stdout) == (1, "")
    plan = DEFAULT_PLAN.resolve()
    assert result.stderr == (
        f"no scores yet for plan 'demo' ({plan}) in warehouse {url} ($KPI_WAREHOUSE_URL): run "
        f"`kpi-pipeline run --plan {plan}` first (yesterday; add --from D1 --to D2 for a range)\n"
    )


def test_unknown_kpi_is_checked_before_the_warehouse_is_opened(tmp_path):
    result = scorecard(f"duckdb:///{tmp_path / 'absent.duckdb'}", "--kpi", "nope")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("unknown KPI id 'nope' in plan 'demo'; valid ids: ")
    assert not (tmp_path / "absent.duckdb").exists()


def test_unreachable_warehouse_is_one_line_without_the_password():
    # Port 9 on loopback: nothing listens (the discard port), the connection is refused.
    url = "postgresql+psycopg://kpi:s3cret-pass@127.0.0.1:9/kpi"
    result = scorecard(url)
    assert (result.returncode, result.stdout) == (2, "")  # configuration: fix the URL
    assert len(result.stderr.splitlines()) == 1
    assert "postgresql+psycopg://kpi:***@127.0.0.1:9/kpi" in result.stderr
    assert "s3cret-pass" not in result.stderr


def test_periods_must_be_positive(warehouse_url):
    result = scorecard(warehouse_url, "--periods", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "kpi-pipeline scorecard: error: argument --periods: must be at least 1, not 0"
    )
