"""Scores in words: hand-written kpi_scores rows and the exact sentences a reader gets."""

import datetime as dt

import pandas as pd
import pytest

from kpi_pipeline.reports.wording import (
    describe_hold,
    describe_period,
    describe_period_to_date,
    describe_projection,
    format_change,
    format_date,
    format_interval,
    format_value,
    is_missing,
    status_words,
)

MARCH_2027 = dt.date(2027, 3, 31)

# The issue's example: a conversion rate behind its path, its forecast short of the target.
AT_RISK_MONTH = {
    "kpi_id": "conversion_rate",
    "kind": "conversion_rate",
    "direction": "increase",
    "grain": "month",
    "period_label": "2026-10",
    "value": 0.0228,
    "expected": 0.0234,
    "target": 0.025,
    "status": "at_risk",
    "is_partial": False,
    "forecast_at_deadline": 0.0241,
    "forecast_low": 0.0230,
    "forecast_high": 0.0252,
    "projected_status": "at_risk",
    "hold_reason": None,
}


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (0.0228, "conversion_rate", "2.28 %"),  # rates: percent, two decimals
        (0.46071, "bounce_rate", "46.07 %"),
        (1.0, "task_completion_rate", "100.00 %"),
        (12345.4, "volume", "12,345"),  # counts: integers with thousands separators
        (999.6, "users", "1,000"),  # rounded, and the separator appears
        (0, "volume", "0"),
        (1.23456, "ratio", "1.235"),  # ratios: four significant digits
        (0.0123456, "ratio", "0.01235"),  # significant digits, not decimals
        (12345.6, "ratio", "12,346"),  # never scientific notation from a thousand up
        (None, "volume", "-"),
        (float("nan"), "conversion_rate", "-"),
        (pd.NA, "ratio", "-"),
    ],
)
def test_format_value_per_kind(value, kind, text):
    assert format_value(value, kind) == text


def test_format_value_dense_percent_sign():
    # The fixed-width scorecard keeps its historical "2.28%".
    assert format_value(0.0228, "conversion_rate", percent_sign="%") == "2.28%"


@pytest.mark.parametrize(
    ("change", "kind", "text"),
    [
        (0.0011, "conversion_rate", "+0.11 pt"),  # rates change in percentage points
        (-0.0205, "engagement_rate", "-2.05 pt"),
        (-1204.0, "volume", "-1,204"),
        (0.25, "ratio", "+0.25"),
        (None, "ratio", "-"),
    ],
)
def test_format_change(change, kind, text):
    assert format_change(change, kind) == text


def test_format_interval():
    assert format_interval(0.021, 0.0246, "conversion_rate") == "2.10–2.46 %"
    assert format_interval(1200, 1350.4, "volume") == "1,200–1,350"
    assert format_interval(None, 0.3, "conversion_rate") == "-"


def test_format_date_and_status_words():
    assert format_date(MARCH_2027) == "31 March 2027"
    assert format_date(pd.Timestamp("2026-01-05")) == "5 January 2026"
    assert format_date(None) == "-"
    assert status_words("off_track") == "off track"
    assert status_words("achieved") == "target achieved"
    assert status_words("insufficient_data") == "not enough data to judge"
    assert status_words("something_new") == "something new"  # unknown: readable anyway
    assert status_words(None) == "-"


def test_missing_values():
    assert all(is_missing(v) for v in (None, float("nan"), pd.NA, pd.NaT))
    assert not any(is_missing(v) for v in (0, 0.0, "", "x", False, [1, 2]))


def test_describe_period_the_issues_example():
    assert describe_period(AT_RISK_MONTH, MARCH_2027) == (
        "2.28 % vs 2.34 % expected; at risk; on pace to reach 2.41 % of 2.50 % by "
        "31 March 2027 (projected: at risk)"
    )


def test_describe_period_reads_a_pandas_row():
    # The same row as a Series (what itertuples/iterrows hand out), NaN for the hold.
    row = pd.Series({**AT_RISK_MONTH, "hold_reason": float("nan")})
    assert describe_period(row, MARCH_2027) == describe_period(AT_RISK_MONTH, MARCH_2027)


def test_describe_period_volume_partial_without_forecast():
    # A partial week of a volume KPI: "so far", no projection (too few closed periods).
    row = {
        "kind": "volume",
        "value": 1234.0,
        "expected": 1500.4,
        "status": "off_track",
        "is_partial": True,
        "forecast_at_deadline": None,
        "projected_status": None,
        "target": 2000.0,
    }
    assert describe_period(row, MARCH_2027) == "1,234 so far vs 1,500 expected; off track"


def test_describe_period_decreasing_kpi_and_held_period():
    # Bounce rate should fall: the forecast is stated "against" the target, not "of" it.
    row = {
        "kind": "bounce_rate",
        "direction": "decrease",
        "value": 0.4607,
        "expected": 0.3931,
        "target": 0.38,
        "status": "off_track",
        "is_partial": False,
        "forecast_at_deadline": 0.41,
        "projected_status": "off_track",
        "hold_reason": "provisional,check:quarantine_rate",
    }
    assert describe_period(row, dt.date(2026, 12, 31)) == (
        "46.07 % vs 39.31 % expected; off track; on pace for 41.00 % against a target of "
        "38.00 % by 31 December 2026 (projected: off track); held: provisional (recent days "
        "may still be revised), flagged by the quarantine_rate data check; no alert until it "
        "clears"
    )


def test_describe_period_without_value_or_deadline():
    row = {"kind": "ratio", "value": None, "status": "insufficient_data"}
    assert describe_period(row, None) == "no value for this period; not enough data to judge"
    forecast_only = {"kind": "ratio", "forecast_at_deadline": 1.5, "target": 2.0}
    assert describe_projection(forecast_only, None) == "on pace to reach 1.5 of 2 by the deadline"


def test_describe_hold():
    assert describe_hold(None) is None
    assert describe_hold("") is None
    assert describe_hold("sampled") == "held: sampled by the source; no alert until it clears"


def test_describe_period_to_date():
    row = {
        "period_label": "2026-11",
        "days_elapsed": 25,
        "value": 0.0231,
        "previous_value": 0.0220,
        "change": 0.0011,
    }
    assert describe_period_to_date(row, "conversion_rate") == (
        "2026-11 so far (25 days): 2.31 % vs 2.20 % over the same days of the previous "
        "period (+0.11 pt)"
    )
    first_day = {"period_label": "2026-W48", "days_elapsed": 1, "value": 310.0}
    assert describe_period_to_date(first_day, "volume") == (
        "2026-W48 so far (1 day): 310 (no comparable previous days)"
    )
    assert describe_period_to_date({"value": None}, "volume") is None
