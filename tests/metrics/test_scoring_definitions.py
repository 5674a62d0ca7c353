"""The new scoring definitions (issue 10) as pure functions, every number computed by hand.

- `expected_over`: a period's expected value is the path's average over the days it is
  judged on (days before the baseline count at the baseline, days after the deadline at the
  target); on a straight stretch, the path's value at the midpoint of those days.
- `score_frame` judges a period on its covered days (`covered_from`..`covered_to`).
- `achieved` for a rate with an interval needs the WHOLE interval past the target.
- quality flags are a set (`flag_set`); alert rules accept `segment_types: [audience]`;
  a month-dated session CSV cannot feed a day or week grain.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.alerts.model import AlertKind
from kpi_pipeline.alerts.rules import evaluate
from kpi_pipeline.metrics.score_tables import flag_set
from kpi_pipeline.metrics.scoring import (
    Goal,
    Status,
    expected_on_path,
    expected_over,
    score_counts,
    score_frame,
    score_value,
)
from kpi_pipeline.plan import PlanError, load_plan
from kpi_pipeline.plan.models import Direction

D = dt.date.fromisoformat

# Day offsets from 2026-01-01 (2026 is not a leap year) used below:
#   Jan d -> d - 1;  Feb 1 -> 31;  Feb 16 -> 46;  Mar 1 -> 59;  Mar 15 -> 73;  Mar 31 -> 89;
#   Apr 1 -> 90;  Apr 30 -> 119;  May 1 -> 120;  May 20 -> 139;  May 31 -> 150;
#   Jun 29 -> 179;  Jul 1 -> 181;  Jul 5 -> 185;  Dec 28 -> 361;  Dec 31 -> 364.
BASELINE_DAY = D("2026-01-01")
DEADLINE = D("2026-12-31")  # 364 days after the baseline

# Rising path: 100 on Jan 1 -> 464 on Dec 31, i.e. exactly +1 a day: path(d) = 100 + offset.
UP = Goal(
    direction=Direction.INCREASE,
    baseline_value=100,
    baseline_date=BASELINE_DAY,
    target_value=464,
    target_date=DEADLINE,
    tolerance=0.10,
)
# Falling path: 0.5 on Jan 1 -> 0.136 on Dec 31, i.e. -0.001 a day: path(d) = 0.5 - 0.001 * offset.
DOWN = Goal(
    direction=Direction.DECREASE,
    baseline_value=0.5,
    baseline_date=BASELINE_DAY,
    target_value=0.136,
    target_date=DEADLINE,
    tolerance=0.10,
    interval=True,
    bounds=(0.0, 1.0),
)


# -- 1. expected_over ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("goal", "first", "last", "expected"),
    [
        # A full ISO week, Mon 5 .. Sun 11 January: offsets 4..10, midpoint 7.
        pytest.param(UP, "2026-01-05", "2026-01-11", 100 + 7, id="up-week"),
        pytest.param(DOWN, "2026-01-05", "2026-01-11", 0.5 - 0.007, id="down-week"),
        # March, straddling nothing: offsets 59..89, midpoint 74.
        pytest.param(UP, "2026-03-01", "2026-03-31", 100 + 74, id="up-march"),
        pytest.param(DOWN, "2026-03-01", "2026-03-31", 0.5 - 0.074, id="down-march"),
        # Dec 27 2025 .. Jan 4 2026 straddles the baseline: offsets -5..3 (9 days).
        # Up: five days before the baseline count at 100, then 100 + 101 + 102 + 103 = 406:
        # (500 + 406) / 9 = 906 / 9 = 100.666... (the naive midpoint, offset -1, would give
        # 99 unclamped or 100 clamped: both wrong).
        pytest.param(UP, "2025-12-27", "2026-01-04", 906 / 9, id="up-straddles-baseline"),
        # Down: 5 x 0.5 + (0.5 + 0.499 + 0.498 + 0.497) = 2.5 + 1.994 = 4.494; / 9 = 0.49933...
        pytest.param(DOWN, "2025-12-27", "2026-01-04", 4.494 / 9, id="down-straddles-baseline"),
        # Dec 28 2026 .. Jan 3 2027 straddles the deadline: offsets 361..367 (7 days).
        # Up: 461 + 462 + 463 + 464 = 1850 on the path, then three days at the target 464
        # (1392): 3242 / 7 = 463.142857...
        pytest.param(UP, "2026-12-28", "2027-01-03", 3242 / 7, id="up-straddles-deadline"),
        # Down: 0.139 + 0.138 + 0.137 + 0.136 = 0.550, then 3 x 0.136 = 0.408: 0.958 / 7.
        pytest.param(DOWN, "2026-12-28", "2027-01-03", 0.958 / 7, id="down-straddles-deadline"),
        # Entirely before the baseline / after the deadline: flat at the baseline / target.
        pytest.param(UP, "2025-12-01", "2025-12-31", 100, id="up-all-before"),
        pytest.param(DOWN, "2027-02-01", "2027-02-28", 0.136, id="down-all-after"),
    ],
)
def test_expected_over_is_the_path_average(goal, first, last, expected):
    assert expected_over(goal, D(first), D(last)) == pytest.approx(expected, rel=1e-12)


def test_expected_over_the_notes_example_week():
    # Baseline 0.01 on 2026-01-01, target 0.03 on 2026-12-31 (364 days); the complete week
    # Mon 5 .. Sun 11 January is days 4..10, midpoint 7: 0.01 + 0.02 * 7 / 364 = 0.0103846...
    goal = Goal(Direction.INCREASE, 0.01, BASELINE_DAY, 0.03, DEADLINE)
    assert expected_over(goal, D("2026-01-05"), D("2026-01-11")) == pytest.approx(
        0.01 + 0.02 * 7 / 364, rel=1e-12
    )


def test_expected_over_a_range_straddling_both_ends_of_a_short_path():
    # 0 on Jan 1 -> 10 on Jan 11 (+1 a day). Dec 30 .. Jan 13: offsets -2..12 (15 days):
    # two days at 0, then 0 + 1 + ... + 10 = 55, then two days at 10 (20): 75 / 15 = 5.
    goal = Goal(Direction.INCREASE, 0, BASELINE_DAY, 10, D("2026-01-11"))
    assert expected_over(goal, D("2025-12-30"), D("2026-01-13")) == pytest.approx(5.0)


@pytest.mark.parametrize("goal", [UP, DOWN], ids=["up", "down"])
@pytest.mark.parametrize(
    ("first", "last", "middle"),
    [
        ("2026-01-05", "2026-01-11", "2026-01-08"),  # 7 days
        ("2026-02-01", "2026-02-27", "2026-02-14"),  # 27 days
        ("2026-03-01", "2026-03-31", "2026-03-16"),  # 31 days
        ("2026-12-01", "2026-12-31", "2026-12-16"),  # ends on the deadline itself
        ("2026-01-01", "2026-01-03", "2026-01-02"),  # starts on the baseline day itself
    ],
)
def test_on_a_straight_stretch_it_equals_the_path_at_the_midpoint(goal, first, last, middle):
    assert expected_over(goal, D(first), D(last)) == pytest.approx(
        expected_on_path(goal, D(middle)), rel=1e-12
    )


def test_an_even_number_of_days_averages_the_two_middle_days():
    # Jan 5..8: offsets 4..7 -> (104 + 105 + 106 + 107) / 4 = 105.5 = mean of Jan 6 and Jan 7.
    assert expected_over(UP, D("2026-01-05"), D("2026-01-08")) == pytest.approx(105.5)
    assert expected_on_path(UP, D("2026-01-06")) == pytest.approx(105)
    assert expected_on_path(UP, D("2026-01-07")) == pytest.approx(106)


@pytest.mark.parametrize(
    ("day", "up", "down"),
    [
        ("2025-06-01", 100, 0.5),  # before the baseline: the baseline
        ("2026-01-01", 100, 0.5),  # the baseline day
        ("2026-03-15", 173, 0.427),  # offset 73
        ("2026-12-31", 464, 0.136),  # the deadline
        ("2027-03-01", 464, 0.136),  # after the deadline: the target
    ],
)
def test_one_day_range_equals_expected_on_path(day, up, down):
    assert expected_over(UP, D(day), D(day)) == pytest.approx(up, rel=1e-12)
    assert expected_on_path(UP, D(day)) == pytest.approx(up, rel=1e-12)
    assert expected_over(DOWN, D(day), D(day)) == pytest.approx(down, rel=1e-12)
    assert expected_on_path(DOWN, D(day)) == pytest.approx(down, rel=1e-12)


def test_expected_over_refuses_an_empty_range():
    with pytest.raises(ValueError, match="no days"):
        expected_over(UP, D("2026-01-08"), D("2026-01-07"))


# -- 2. score_frame judges a period on its covered days ------------------------------------

# A rate: 0.100 on Jan 1 -> 0.464 on Dec 31 (+0.001 a day), 10 % relative tolerance.
RATE = Goal(
    direction=Direction.INCREASE,
    baseline_value=0.100,
    baseline_date=BASELINE_DAY,
    target_value=0.464,
    target_date=DEADLINE,
    tolerance=0.10,
    min_denominator=100,
    interval=True,
    bounds=(0.0, 1.0),
)


def _values(rows: list[dict]) -> pd.DataFrame:
    """A kpi_values-shaped frame: one dict per row (dates as ISO strings)."""
    records = []
    for row in rows:
        numerator, denominator = row["numerator"], row.get("denominator")
        records.append(
            {
                "kpi_id": row.get("kpi_id", "rate"),
                "grain": row["grain"],
                "period_start": pd.Timestamp(row["period_start"]),
                "period_end": pd.Timestamp(row["period_end"]),
                "period_label": row["label"],
                "segment_type": "all",
                "segment": "all",
                "numerator": float(numerator),
                "denominator": float("nan") if denominator is None else float(denominator),
                "value": numerator if denominator is None else numerator / denominator,
                "days_with_data": row["days_covered"],
                "is_partial": row["is_partial"],
                "as_of_date": pd.Timestamp(row.get("as_of_date", row["covered_to"])),
                "quality_flags": None,
                "covered_from": pd.Timestamp(row["covered_from"]),
                "covered_to": pd.Timestamp(row["covered_to"]),
                "days_covered": row["days_covered"],
            }
        )
    return pd.DataFrame(records)


# History starts on Feb 16: Q1 is cut by it. Its covered days are Feb 16 .. Mar 31
# (13 + 31 = 44 of the quarter's 90): offsets 46..89, average offset (46 + 89) / 2 = 67.5.
HISTORY_CUT_Q1 = {
    "grain": "quarter",
    "period_start": "2026-01-01",
    "period_end": "2026-03-31",
    "label": "2026-Q1",
    "covered_from": "2026-02-16",
    "covered_to": "2026-03-31",
    "days_covered": 44,
    "is_partial": True,
    "numerator": 14_500,
    "denominator": 100_000,
}


def test_a_history_cut_quarter_is_judged_on_its_covered_days():
    scored = score_frame(_values([HISTORY_CUT_Q1]), {"rate": RATE}).iloc[0]
    # Expected: 0.1 + 0.001 * 67.5 = 0.1675 (the whole quarter, offsets 0..89, would give
    # 0.1445; the path on Mar 31 alone 0.189). Band: 10 % of 0.1675 = 0.01675.
    assert scored.expected == pytest.approx(0.1675, rel=1e-12)
    assert scored.tolerance_band == pytest.approx(0.01675, rel=1e-12)
    # 14500 / 100000 = 0.145; Wilson 95 %: p(1-p)/n = 0.123975e-5, sqrt = 0.0011134,
    # x 1.96 = 0.0021823; centre 0.145 + 1.92e-5 -> [0.142831, 0.147196].
    assert (scored.ci_low, scored.ci_high) == pytest.approx((0.142831, 0.147196), abs=2e-6)
    # Even the interval's top (0.147196) is 0.0203 behind 0.1675, more than the band:
    # off_track. Against the whole quarter's 0.1445 it would have been on_track.
    assert scored.status == Status.OFF_TRACK.value


def test_the_last_loaded_day_of_the_warehouse_does_not_move_the_judgement():
    # The same quarter with as_of_date on a later loaded day (May 20, offset 139: the path
    # there is 0.239) is still judged on Feb 16 .. Mar 31.
    later = {**HISTORY_CUT_Q1, "as_of_date": "2026-05-20"}
    scored = score_frame(_values([later]), {"rate": RATE}).iloc[0]
    assert scored.expected == pytest.approx(0.1675, rel=1e-12)
    assert scored.status == Status.OFF_TRACK.value


def test_a_complete_month_and_a_partial_current_month():
    april = {
        "grain": "month",
        "period_start": "2026-04-01",
        "period_end": "2026-04-30",
        "label": "2026-04",
        "covered_from": "2026-04-01",
        "covered_to": "2026-04-30",
        "days_covered": 30,
        "is_partial": False,
        "numerator": 20_000,
        "denominator": 100_000,
    }
    may = {
        "grain": "month",
        "period_start": "2026-05-01",
        "period_end": "2026-05-31",
        "label": "2026-05",
        "covered_from": "2026-05-01",
        "covered_to": "2026-05-20",
        "days_covered": 20,
        "is_partial": True,
        "numerator": 23_000,
        "denominator": 100_000,
    }
    scored = score_frame(_values([april, may]), {"rate": RATE}).set_index("period_label")
    # April, complete: offsets 90..119, midpoint 104.5 -> 0.2045, band 0.02045. 0.200 with
    # interval [0.197532, 0.202491] is behind, by less than the band: at_risk.
    assert scored.loc["2026-04", "expected"] == pytest.approx(0.2045, rel=1e-12)
    assert scored.loc["2026-04", "status"] == Status.AT_RISK.value
    # May, covered May 1..20: offsets 120..139, midpoint 129.5 -> 0.2295 (the whole month,
    # offsets 120..150, would give 0.235; the path on May 20 0.239). 0.230 >= 0.2295:
    # on_track (against 0.235 or 0.239 it would be at_risk).
    assert scored.loc["2026-05", "expected"] == pytest.approx(0.2295, rel=1e-12)
    assert scored.loc["2026-05", "tolerance_band"] == pytest.approx(0.02295, rel=1e-12)
    assert scored.loc["2026-05", "status"] == Status.ON_TRACK.value


# -- 3. the interval rule for `achieved` ---------------------------------------------------

# The tiny plan's conversion rate: 0.01 on Jan 1 -> 0.03 on Dec 31. On Jul 1 (offset 181)
# the path is 0.01 + 0.02 * 181 / 364 = 0.0199451.
CONV = Goal(
    Direction.INCREASE, 0.01, BASELINE_DAY, 0.03, DEADLINE, 0.1, interval=True, bounds=(0, 1)
)
# A bounce rate: 0.50 on Jan 1 -> 0.40 on Dec 31 (decrease). On Jul 1: 0.5 - 0.1 * 181/364
# = 0.4502747.
BOUNCE = Goal(
    Direction.DECREASE, 0.50, BASELINE_DAY, 0.40, DEADLINE, 0.1, interval=True, bounds=(0, 1)
)
JUL_1 = D("2026-07-01")


@pytest.mark.parametrize(
    ("goal", "numerator", "denominator", "interval", "status"),
    [
        # 31 / 1000 = 0.031 >= target 0.03, but Wilson [0.021924, 0.043665] reaches below it:
        # not achieved; ahead of the path (0.0199) -> on_track.
        pytest.param(CONV, 31, 1000, (0.021924, 0.043665), Status.ON_TRACK, id="point-only"),
        # Exactly on the target with a narrow interval [0.029667, 0.030336]: still not achieved.
        pytest.param(
            CONV, 30_000, 1_000_000, (0.029667, 0.030336), Status.ON_TRACK, id="point-at-target"
        ),
        # 3500 / 100000 = 0.035, interval [0.033879, 0.036157]: the whole of it clears 0.03.
        pytest.param(CONV, 3500, 100_000, (0.033879, 0.036157), Status.ACHIEVED, id="whole"),
        # Decrease: the HIGH end must be at or below the target 0.40. 390/1000 = 0.39 has
        # [0.360245, 0.420596]: its high end 0.4206 > 0.40 -> not achieved (the low end would
        # wrongly have said achieved); 0.39 is below the path 0.4503 -> on_track.
        pytest.param(
            BOUNCE, 390, 1000, (0.360245, 0.420596), Status.ON_TRACK, id="decrease-high-end"
        ),
        # 3800/10000 = 0.38, [0.370534, 0.389558]: high end under 0.40 -> achieved.
        pytest.param(
            BOUNCE, 3800, 10_000, (0.370534, 0.389558), Status.ACHIEVED, id="decrease-whole"
        ),
    ],
)
def test_achieved_needs_the_whole_interval(goal, numerator, denominator, interval, status):
    score = score_counts(goal, numerator, denominator, JUL_1)
    assert (score.ci_low, score.ci_high) == pytest.approx(interval, abs=2e-6)
    assert score.status is status


def test_after_the_deadline_a_point_at_target_with_a_wide_interval_is_on_track():
    # After Dec 31 the path is at the target (0.03): 0.031 is ahead of it, but the interval
    # [0.021924, 0.043665] still reaches below: on_track, not achieved.
    assert score_counts(CONV, 31, 1000, D("2027-01-15")).status is Status.ON_TRACK


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (464, Status.ACHIEVED),  # at the target: achieved (no interval to clear)
        (470, Status.ACHIEVED),
        (463, Status.ON_TRACK),  # under the target, ahead of the path (281 on Jul 1)
    ],
)
def test_a_volume_has_no_interval(value, status):
    score = score_value(UP, value, JUL_1)
    assert (score.ci_low, score.ci_high, score.status) == (None, None, status)


def test_score_frame_applies_the_interval_rule_to_rates_only():
    # Week Mon Jun 29 .. Sun Jul 5 2026, complete: offsets 179..185, midpoint 182.
    week = {
        "grain": "week",
        "period_start": "2026-06-29",
        "period_end": "2026-07-05",
        "label": "2026-W27",
        "covered_from": "2026-06-29",
        "covered_to": "2026-07-05",
        "days_covered": 7,
        "is_partial": False,
    }
    frame = _values(
        [
            {**week, "kpi_id": "conv_wide", "numerator": 31, "denominator": 1000},
            {**week, "kpi_id": "conv_narrow", "numerator": 3500, "denominator": 100_000},
            {**week, "kpi_id": "vol", "numerator": 470, "denominator": None},
        ]
    )
    goals = {"conv_wide": CONV, "conv_narrow": CONV, "vol": UP}
    scored = score_frame(frame, goals).set_index("kpi_id")
    # Conversion path at offset 182: 0.01 + 0.02 * 182/364 = 0.02 exactly halfway.
    assert scored.loc["conv_wide", "expected"] == pytest.approx(0.02, rel=1e-12)
    assert scored.loc["conv_wide", "status"] == Status.ON_TRACK.value
    assert scored.loc["conv_wide", "ci_low"] == pytest.approx(0.021924, abs=2e-6)
    assert scored.loc["conv_narrow", "status"] == Status.ACHIEVED.value
    # Volume path at 182: 282; 470 >= target 464: achieved, and no interval at all.
    assert scored.loc["vol", "expected"] == pytest.approx(282, rel=1e-12)
    assert scored.loc["vol", "status"] == Status.ACHIEVED.value
    assert pd.isna(scored.loc["vol", "ci_low"]) and pd.isna(scored.loc["vol", "ci_high"])


# -- quality flags are a set ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("thresholded,sampled", "sampled,thresholded"),
        ("sampled,thresholded,sampled", "sampled,thresholded"),
        (" thresholded , sampled ,", "sampled,thresholded"),
        ("sampled", "sampled"),
        ("", None),
        (" , ", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_flag_set(flags, expected):
    assert flag_set(flags) == expected


# -- 6. an audience alert ------------------------------------------------------------------

AUDIENCE_PLAN = """\
id: audience_alerts
organization: Tiny Shop
mission: Sell a few things.
timezone: UTC
currency: EUR
history_start: 2026-01-01
sources:
  session_csvs:
    - id: visits
      path: visits/*.csv
      period: {column: Day, format: "%Y-%m-%d"}
      converted: {column: Revenue}
      audience: VisitorType
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: conv
        label: Purchase conversion rate
        kind: conversion_rate
        baseline: {value: 0.10, as_of: 2026-01-01}
        target: {value: 0.20, by: 2026-12-31}
        grains: [month]
        segments: [audience]
alerts:
  rules:
    - grains: [month]
      statuses: [off_track]
      segment_types: [audience]
"""


def _audience_scores(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "kpi_id": "conv",
                "kpi_label": "Purchase conversion rate",
                "kind": "conversion_rate",
                "objective_title": "Sell more",
                "grain": "month",
                "segment_type": segment_type,
                "segment": segment,
                "period_start": pd.Timestamp("2026-01-01"),
                "period_label": "2026-01",
                "status": status,
                "is_partial": False,
                "hold_reason": None,
                "value": 0.05,
                "expected": 0.1,
                "target": 0.2,
                "ci_low": 0.04,
                "ci_high": 0.06,
                "forecast_at_deadline": None,
                "projected_status": None,
            }
            for segment_type, segment, status in rows
        ]
    )


def test_an_audience_alert_rule_validates_and_alerts_on_audience_rows(tmp_path: Path):
    plan_path = tmp_path / "audience_alerts.yaml"
    plan_path.write_text(AUDIENCE_PLAN, encoding="utf-8")
    plan = load_plan(plan_path).plan
    (rule,) = plan.alerts.rules
    assert rule.segment_types == ["audience"]
    scores = _audience_scores(
        [
            ("all", "all", "off_track"),  # no rule covers the whole: silent
            ("audience", "Returning_Visitor", "off_track"),  # slips: alerted
            ("audience", "New_Visitor", "on_track"),  # judged, nothing to say
        ]
    )
    now = dt.datetime(2026, 2, 3, 7, 0, tzinfo=dt.UTC)
    result = evaluate(scores, pd.DataFrame(), plan.alerts, now)
    assert [(a.kind, a.segment_type, a.segment, a.status) for a in result.alerts] == [
        (AlertKind.SLIPPED, "audience", "Returning_Visitor", "off_track")
    ]
    # Both audience series are recorded in the alert state; the 'all' series is not.
    assert sorted(zip(result.state.segment_type, result.state.segment, strict=True)) == [
        ("audience", "New_Visitor"),
        ("audience", "Returning_Visitor"),
    ]


def test_an_unknown_alert_segment_type_is_refused(tmp_path: Path):
    plan_path = tmp_path / "audience_alerts.yaml"
    plan_path.write_text(
        AUDIENCE_PLAN.replace("segment_types: [audience]", "segment_types: [visitor]"),
        encoding="utf-8",
    )
    with pytest.raises(PlanError) as caught:
        load_plan(plan_path)
    (issue,) = caught.value.issues
    assert issue.path == "alerts.rules[0].segment_types[0]"


# -- 8. a month-dated session CSV cannot feed day or week grains ---------------------------

MONTH_DATED_PLAN = """\
id: month_dated
organization: Tiny Shop
mission: Sell a few things.
timezone: UTC
currency: EUR
history_start: 2026-01-01
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
      event_columns: {quote_request: quote_request}
  session_csvs:
    - id: shoppers
      path: shoppers/*.csv
      period: {column: Month, format: month_name, year: 2026}
      converted: {column: Revenue}
measures:
  - {id: quotes, event: quote_request}
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: quote_volume
        label: Quote requests
        kind: volume
        measure: quotes
        baseline: {value: 10, as_of: 2026-01-01}
        target: {value: 20, by: 2026-12-31}
        grains: [week]
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.1, as_of: 2026-01-01}
        target: {value: 0.2, by: 2026-12-31}
        grains: [month, week, quarter, day]
"""


def test_a_month_dated_source_cannot_feed_a_week_or_day_grain(tmp_path: Path):
    plan_path = tmp_path / "month_dated.yaml"
    plan_path.write_text(MONTH_DATED_PLAN, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(plan_path)
    issues = caught.value.issues
    # Only the conversion rate reads the month-dated sessions (sessions, key events); the
    # quote volume is fed by the CSV export alone, so its week grain is fine.
    # Its grains [month, week, quarter, day]: week is item 1, day is item 3.
    grains_line = (
        MONTH_DATED_PLAN.splitlines().index("        grains: [month, week, quarter, day]") + 1
    )
    assert [(i.path, i.line) for i in issues] == [
        ("objectives[0].kpis[1].grains[1]", grains_line),
        ("objectives[0].kpis[1].grains[3]", grains_line),
    ]
    assert issues[0].message == (
        "source 'shoppers' dates its rows by month: it cannot feed a week grain "
        "(use month or quarter)"
    )
    assert issues[1].message == (
        "source 'shoppers' dates its rows by month: it cannot feed a day grain "
        "(use month or quarter)"
    )
    assert str(issues[0]) == (
        f"{plan_path}:{grains_line}: objectives[0].kpis[1].grains[1]: {issues[0].message}"
    )


def test_a_month_dated_source_feeds_month_and_quarter_grains(tmp_path: Path):
    plan_path = tmp_path / "month_dated.yaml"
    plan_path.write_text(
        MONTH_DATED_PLAN.replace("[month, week, quarter, day]", "[month, quarter]"),
        encoding="utf-8",
    )
    plan = load_plan(plan_path).plan
    conv = plan.objectives[0].kpis[1]
    assert plan.kpi_sources(conv) == ["export", "shoppers"]
    assert plan.kpi_sources(plan.objectives[0].kpis[0]) == ["export"]
