"""Scoring a KPI value against the straight path from baseline to target."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.metrics.forecast import Forecast
from kpi_pipeline.metrics.scoring import (
    SCORE_COLUMNS,
    Goal,
    Status,
    expected_on_path,
    hold_reason,
    hold_windows,
    project_status,
    revision_window_days,
    score_counts,
    score_frame,
    score_value,
)
from kpi_pipeline.plan.alerts import AlertRule
from kpi_pipeline.plan.ga4 import Ga4Source
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.models import Direction, ToleranceMode

D = dt.date.fromisoformat

# Every goal below runs over 10 days, 2026-01-01 -> 2026-01-11, so a day moves the path by a
# tenth of (target - baseline) and 2026-01-06 is exactly halfway.
BASELINE_DAY = D("2026-01-01")
HALFWAY = D("2026-01-06")
DEADLINE = D("2026-01-11")
AFTER_DEADLINE = D("2026-02-01")

# A conversion-rate-like KPI: 2.0% -> 3.0%, 10% relative tolerance, >= 500 sessions.
# Halfway: expected = 0.020 + 0.010 * 5/10 = 0.025, band = 0.10 * 0.025 = 0.0025.
RATE_UP = Goal(
    direction=Direction.INCREASE,
    baseline_value=0.020,
    baseline_date=BASELINE_DAY,
    target_value=0.030,
    target_date=DEADLINE,
    tolerance=0.10,
    tolerance_mode=ToleranceMode.RELATIVE,
    min_denominator=500,
)
# A count KPI with integer numbers, so boundaries are exact in floating point:
# 200 -> 400; halfway expected = 300, band = 0.10 * 300 = 30. It declares a
# min_denominator that volume rows (denominator None) must ignore.
VOLUME_UP = Goal(
    direction=Direction.INCREASE,
    baseline_value=200,
    baseline_date=BASELINE_DAY,
    target_value=400,
    target_date=DEADLINE,
    tolerance=0.10,
    min_denominator=100,
)
# Same rate KPI with an absolute band of 0.2 points (0.002), whatever the expected value.
RATE_UP_ABSOLUTE = Goal(
    direction=Direction.INCREASE,
    baseline_value=0.020,
    baseline_date=BASELINE_DAY,
    target_value=0.030,
    target_date=DEADLINE,
    tolerance=0.002,
    tolerance_mode=ToleranceMode.ABSOLUTE,
)
# A bounce-rate-like KPI where lower is better: 60% -> 40%, 5% relative tolerance.
# Halfway: expected = 0.60 + (0.40 - 0.60) * 5/10 = 0.50, band = 0.05 * 0.50 = 0.025;
# "behind" means *above* the path.
BOUNCE_DOWN = Goal(
    direction=Direction.DECREASE,
    baseline_value=0.60,
    baseline_date=BASELINE_DAY,
    target_value=0.40,
    target_date=DEADLINE,
    tolerance=0.05,
)
# A net-promoter-like score that can be negative: -20 -> +10, 10% relative tolerance.
# Halfway: expected = -20 + 30 * 5/10 = -5, band = 0.10 * |-5| = 0.5 (a band must not turn
# negative with its expected value).
NPS_UP = Goal(
    direction=Direction.INCREASE,
    baseline_value=-20,
    baseline_date=BASELINE_DAY,
    target_value=10,
    target_date=DEADLINE,
    tolerance=0.10,
)
# Baseline 0.1 -> 0.4 over 3 days: on day 2 the path is 0.1 + 0.3 * 2/3, which floats
# compute as 0.30000000000000004 — a hair above the 0.3 a user would call "on path".
FLOATY = Goal(
    direction=Direction.INCREASE,
    baseline_value=0.1,
    baseline_date=BASELINE_DAY,
    target_value=0.4,
    target_date=D("2026-01-04"),
)


# --------------------------------------------------------------------------- expected_on_path


@pytest.mark.parametrize(
    ("goal", "on", "expected"),
    [
        # Before the baseline date the path has not started: the baseline, not an
        # extrapolation below it (0.020 - 0.001 * 31 days would be -0.011).
        pytest.param(RATE_UP, D("2025-12-01"), 0.020, id="before-baseline"),
        # On the baseline date itself: progress 0/10.
        pytest.param(RATE_UP, BASELINE_DAY, 0.020, id="at-baseline"),
        # 3 of 10 days: 0.020 + 0.010 * 0.3 = 0.023.
        pytest.param(RATE_UP, D("2026-01-04"), 0.023, id="30-percent"),
        # Halfway: (0.020 + 0.030) / 2 = 0.025.
        pytest.param(RATE_UP, HALFWAY, 0.025, id="halfway-midpoint"),
        # On the deadline: the target.
        pytest.param(RATE_UP, DEADLINE, 0.030, id="at-deadline"),
        # After the deadline the path stays at the target (0.020 + 0.001 * 31 would be 0.051).
        pytest.param(RATE_UP, AFTER_DEADLINE, 0.030, id="after-deadline"),
        # Lower-is-better KPI: the path goes *down*, 0.60 - 0.20 * 0.3 = 0.54 on day 3.
        pytest.param(BOUNCE_DOWN, D("2026-01-04"), 0.54, id="decrease-goes-down"),
        # Decrease KPI halfway: 0.50; before baseline: 0.60; after deadline: 0.40.
        pytest.param(BOUNCE_DOWN, HALFWAY, 0.50, id="decrease-halfway"),
        pytest.param(BOUNCE_DOWN, D("2025-12-01"), 0.60, id="decrease-before-baseline"),
        pytest.param(BOUNCE_DOWN, AFTER_DEADLINE, 0.40, id="decrease-after-deadline"),
    ],
)
def test_expected_on_path(goal, on, expected):
    assert expected_on_path(goal, on) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------- score_value

A, OT, AR, OFF, NA = (
    Status.ACHIEVED,
    Status.ON_TRACK,
    Status.AT_RISK,
    Status.OFF_TRACK,
    Status.INSUFFICIENT_DATA,
)


@pytest.mark.parametrize(
    ("goal", "value", "on", "denominator", "status"),
    [
        # --- increase, relative tolerance; halfway expected 0.025, band 0.0025 -> at_risk
        # from 0.0225 up to (not incl.) 0.025.
        # Exactly on the path counts as on track.
        pytest.param(RATE_UP, 0.025, HALFWAY, 1000, OT, id="up-on-path"),
        # The path value floats as 0.30000000000000004; 0.3 is 5.6e-17 "behind", which the
        # epsilon must absorb, or an exact-on-path value would be at_risk.
        pytest.param(FLOATY, 0.3, D("2026-01-03"), None, OT, id="up-on-path-float-epsilon"),
        # Ahead of the path (0.028 > 0.025) but short of the 0.030 target.
        pytest.param(RATE_UP, 0.028, HALFWAY, 1000, OT, id="up-ahead"),
        # Target value reached before the deadline: achieved beats on_track.
        pytest.param(RATE_UP, 0.030, HALFWAY, 1000, A, id="up-target-reached-early-exact"),
        pytest.param(RATE_UP, 0.031, HALFWAY, 1000, A, id="up-target-beaten-early"),
        # Behind by 0.025 - 0.024 = 0.001 < band 0.0025.
        pytest.param(RATE_UP, 0.024, HALFWAY, 1000, AR, id="up-behind-within-band"),
        # Behind by 0.025 - 0.022 = 0.003 > band 0.0025.
        pytest.param(RATE_UP, 0.022, HALFWAY, 1000, OFF, id="up-behind-beyond-band"),
        # Exactly at the band edge, 0.025 - 0.0025 = 0.0225 (floats: 2.2e-18 past the edge,
        # epsilon keeps it inside): the band is inclusive.
        pytest.param(RATE_UP, 0.0225, HALFWAY, 1000, AR, id="up-rate-at-band-edge"),
        # Same edge with exact integers: 300 - 30 = 270 -> at_risk; 269 -> off_track.
        pytest.param(VOLUME_UP, 270, HALFWAY, None, AR, id="up-volume-at-band-edge"),
        pytest.param(VOLUME_UP, 269, HALFWAY, None, OFF, id="up-volume-just-beyond-band"),
        # --- absolute tolerance: band = 0.002 (not 10% of 0.025 = 0.0025).
        # Behind by 0.025 - 0.0235 = 0.0015 < 0.002.
        pytest.param(RATE_UP_ABSOLUTE, 0.0235, HALFWAY, None, AR, id="abs-within-band"),
        # Behind by 0.025 - 0.0228 = 0.0022 > 0.002: off track, although a *relative* 10%
        # band (0.0025) would have said at_risk — proves the mode is honoured.
        pytest.param(RATE_UP_ABSOLUTE, 0.0228, HALFWAY, None, OFF, id="abs-beyond-band"),
        # --- decrease (lower is better); halfway expected 0.50, band 0.025 -> at_risk from
        # above 0.50 up to 0.525.
        # At or below the 0.40 target: achieved.
        pytest.param(BOUNCE_DOWN, 0.40, HALFWAY, None, A, id="down-target-exact"),
        pytest.param(BOUNCE_DOWN, 0.38, HALFWAY, None, A, id="down-below-target"),
        # Exactly on the path, and below it (ahead, since lower is better).
        pytest.param(BOUNCE_DOWN, 0.50, HALFWAY, None, OT, id="down-on-path"),
        pytest.param(BOUNCE_DOWN, 0.45, HALFWAY, None, OT, id="down-ahead"),
        # Above the path by 0.52 - 0.50 = 0.02 < 0.025.
        pytest.param(BOUNCE_DOWN, 0.52, HALFWAY, None, AR, id="down-behind-within-band"),
        # Above the path by 0.53 - 0.50 = 0.03 > 0.025.
        pytest.param(BOUNCE_DOWN, 0.53, HALFWAY, None, OFF, id="down-behind-beyond-band"),
        # Higher than baseline is far off track for a decrease KPI; a direction-blind scorer
        # would call 0.65 "achieved".
        pytest.param(BOUNCE_DOWN, 0.65, HALFWAY, None, OFF, id="down-worse-than-baseline"),
        # --- negative expected value (NPS halfway -5, band 0.5).
        # Behind by -5 - (-5.4) = 0.4 < 0.5: at_risk (a signed band of -0.5 would say off).
        pytest.param(NPS_UP, -5.4, HALFWAY, None, AR, id="negative-expected-within-band"),
        # Behind by -5 - (-5.6) = 0.6 > 0.5.
        pytest.param(NPS_UP, -5.6, HALFWAY, None, OFF, id="negative-expected-beyond-band"),
        # --- deadline passed: expected == target 0.030, band 0.10 * 0.030 = 0.003.
        # 0.028 misses by 0.002 < 0.003: at_risk, not on_track.
        pytest.param(RATE_UP, 0.028, AFTER_DEADLINE, 1000, AR, id="after-deadline-missed-close"),
        # 0.026 misses by 0.004 > 0.003.
        pytest.param(RATE_UP, 0.026, AFTER_DEADLINE, 1000, OFF, id="after-deadline-missed-far"),
        # 0.030 met on time.
        pytest.param(RATE_UP, 0.030, AFTER_DEADLINE, 1000, A, id="after-deadline-met"),
        # Decrease KPI past its deadline: expected 0.40, band 0.02; 0.41 misses by 0.01.
        pytest.param(BOUNCE_DOWN, 0.41, AFTER_DEADLINE, None, AR, id="down-after-deadline"),
        # --- data sufficiency (RATE_UP needs >= 500 in the denominator).
        # 499 sessions: a rate on too few sessions is noise, even if it looks achieved.
        pytest.param(RATE_UP, 0.05, HALFWAY, 499, NA, id="denominator-under-min"),
        # Exactly 500 is enough (the minimum is inclusive): scored as achieved.
        pytest.param(RATE_UP, 0.05, HALFWAY, 500, A, id="denominator-equal-min"),
        # A fractional denominator just under the minimum is still under it.
        pytest.param(RATE_UP, 0.05, HALFWAY, 499.5, NA, id="denominator-fraction-under-min"),
        # No value at all.
        pytest.param(RATE_UP, None, HALFWAY, 1000, NA, id="value-none"),
        # NaN is what 0/0 gives in a frame; it must not fall through to off_track.
        pytest.param(RATE_UP, math.nan, HALFWAY, 1000, NA, id="value-nan"),
        # A volume KPI has no denominator (None): its min_denominator (100) is not applied.
        pytest.param(VOLUME_UP, 300, HALFWAY, None, OT, id="volume-denominator-none"),
    ],
)
def test_score_value_status(goal, value, on, denominator, status):
    assert score_value(goal, value, on, denominator).status is status


@pytest.mark.parametrize(
    ("goal", "value", "denominator", "expected", "band"),
    [
        # Halfway rate: expected 0.025, relative band 0.10 * 0.025 = 0.0025.
        pytest.param(RATE_UP, 0.024, 1000, 0.025, 0.0025, id="relative"),
        # Absolute: the band is the tolerance itself, 0.002.
        pytest.param(RATE_UP_ABSOLUTE, 0.024, None, 0.025, 0.002, id="absolute"),
        # Decrease: band is relative to |expected| = 0.50 -> 0.025 (positive).
        pytest.param(BOUNCE_DOWN, 0.52, None, 0.50, 0.025, id="decrease"),
        # Negative expected -5: the band is 0.10 * |-5| = 0.5, positive.
        pytest.param(NPS_UP, -5.4, None, -5.0, 0.5, id="negative-expected"),
        # Insufficient data still reports where the path is and its band (for the chart).
        pytest.param(RATE_UP, None, 1000, 0.025, 0.0025, id="insufficient-keeps-expected"),
    ],
)
def test_score_value_expected_and_band(goal, value, denominator, expected, band):
    score = score_value(goal, value, HALFWAY, denominator)
    assert score.expected == pytest.approx(expected, rel=1e-12)
    assert score.tolerance_band == pytest.approx(band, rel=1e-12)
    # Filled only by later steps.
    assert (score.ci_low, score.ci_high, score.forecast_at_deadline) == (None, None, None)
    assert score.projected_status is None


# --------------------------------------------------------------------------- score_frame

# Goals for the frame run 120 days, 2026-01-01 -> 2026-05-01 (31 + 28 + 31 + 30 = 120).
CONV = Goal(
    direction=Direction.INCREASE,
    baseline_value=0.020,
    baseline_date=D("2026-01-01"),
    target_value=0.032,
    target_date=D("2026-05-01"),
    tolerance=0.10,
    min_denominator=500,
)
ORDERS = Goal(
    direction=Direction.INCREASE,
    baseline_value=100,
    baseline_date=D("2026-01-01"),
    target_value=220,
    target_date=D("2026-05-01"),
    tolerance=0.10,
    min_denominator=50,
)


@pytest.fixture
def values() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kpi_id": ["conv", "conv", "orders"],
            "value": [0.023, 0.0245, 200.0],
            "denominator": [800.0, 900.0, math.nan],
            "period_end": pd.to_datetime(["2026-01-31", "2026-02-28", "2026-03-31"]),
            "is_partial": [False, True, False],
            "as_of_date": pd.to_datetime(["2026-02-10", "2026-02-10", "2026-04-05"]),
        }
    ).astype({"period_end": "datetime64[s]", "as_of_date": "datetime64[s]"})


def test_score_frame_judges_partial_period_at_as_of_date(values):
    scored = score_frame(values, {"conv": CONV, "orders": ORDERS})
    # Row 0, complete January: judged at period_end 01-31 = day 30 of 120, not at the later
    # as_of_date: 0.020 + 0.012 * 30/120 = 0.023 -> value 0.023 is on the path.
    # Row 1, partial February: judged at as_of_date 02-10 = day 40:
    # 0.020 + 0.012 * 40/120 = 0.024 -> 0.0245 is on track. At period_end 02-28 (day 58) the
    # path would be 0.020 + 0.012 * 58/120 = 0.0258, band 0.00258 -> at_risk instead.
    # Row 2, volume, complete March: day 89 -> 100 + 120 * 89/120 = 189; 200 >= 189, and its
    # NaN denominator does not trip min_denominator 50.
    assert scored["expected"].tolist() == pytest.approx([0.023, 0.024, 189.0], rel=1e-12)
    assert scored["status"].tolist() == ["on_track", "on_track", "on_track"]
    assert scored["target"].tolist() == [0.032, 0.032, 220]
    # Bands: 0.10 * 0.023, 0.10 * 0.024, 0.10 * 189.
    assert scored["tolerance_band"].tolist() == pytest.approx([0.0023, 0.0024, 18.9], rel=1e-12)
    # Cross-check of the "why": row 1 judged at its period end would be at risk.
    at_end = score_value(CONV, 0.0245, D("2026-02-28"), 900)
    assert at_end.expected == pytest.approx(0.0258, rel=1e-12)
    assert at_end.status is Status.AT_RISK


def test_score_frame_columns_and_placeholders(values):
    original = values.copy()
    scored = score_frame(values, {"conv": CONV, "orders": ORDERS})
    # Input columns are kept, in order, followed by every score column.
    assert list(scored.columns) == list(values.columns) + SCORE_COLUMNS
    assert len(scored) == 3
    # ci / forecast columns exist (the schema is fixed) and are null until filled later.
    for column in ("ci_low", "ci_high", "forecast_at_deadline", "projected_status"):
        assert scored[column].isna().all(), column
    assert scored["ci_low"].dtype == "float64"
    # The caller's frame is not modified.
    pd.testing.assert_frame_equal(values, original)


def test_score_frame_insufficient_rows(values):
    # Row 0 with 400 sessions (< 500) and row 1 with a NaN value: both insufficient_data;
    # expected is still filled (0.023, 0.024 as above).
    values.loc[0, "denominator"] = 400.0
    values.loc[1, "value"] = math.nan
    scored = score_frame(values, {"conv": CONV, "orders": ORDERS})
    assert scored["status"].tolist() == ["insufficient_data", "insufficient_data", "on_track"]
    assert scored["expected"].tolist()[:2] == pytest.approx([0.023, 0.024], rel=1e-12)


# --------------------------------------------------------------------------- intervals
# With an interval, off_track needs the *whole* interval beyond the band; a point beyond
# the band whose interval still reaches it is at_risk. RATE_UP halfway: expected 0.025,
# band edge 0.0225.


@pytest.mark.parametrize(
    ("goal", "value", "interval", "status"),
    [
        # Small n: 0.020 is beyond the band, but the interval's top 0.031 reaches it — noise.
        pytest.param(RATE_UP, 0.020, (0.011, 0.031), AR, id="small-n-beyond-band-is-at-risk"),
        # Large n: same point, interval [0.0195, 0.0205] wholly below 0.0225 — a signal.
        pytest.param(RATE_UP, 0.020, (0.0195, 0.0205), OFF, id="large-n-beyond-band-is-off"),
        # The interval's top exactly on the band edge still reaches it (inclusive).
        pytest.param(RATE_UP, 0.020, (0.015, 0.0225), AR, id="interval-touches-band-edge"),
        # A point within the band is at risk whatever the interval says.
        pytest.param(RATE_UP, 0.024, (0.0239, 0.0241), AR, id="within-band-narrow-interval"),
        # Ahead of the path: on track even if the interval dips below the band.
        pytest.param(RATE_UP, 0.026, (0.010, 0.040), OT, id="ahead-wide-interval"),
        # The point meets the target but the interval reaches below it: not achieved (the
        # whole interval must clear the target, as off_track needs it beyond the band);
        # ahead of the path, so on track.
        pytest.param(RATE_UP, 0.031, (0.020, 0.040), OT, id="target-point-only"),
        # The whole interval clears the target: achieved.
        pytest.param(RATE_UP, 0.033, (0.031, 0.035), A, id="target-reached-early"),
        # Decrease KPI (target 0.40): the interval's high end must be at or below the target;
        # 0.40 whose interval reaches 0.42 is only ahead of the path (0.50 halfway).
        pytest.param(BOUNCE_DOWN, 0.38, (0.36, 0.40), A, id="decrease-whole-interval-at-target"),
        pytest.param(BOUNCE_DOWN, 0.40, (0.38, 0.42), OT, id="decrease-interval-above-target"),
        # Decrease KPI: the favourable end is the *low* one. 0.53 is beyond the 0.525 edge;
        # low end 0.50 reaches the band -> at risk; a [0.526, 0.534] interval does not.
        pytest.param(BOUNCE_DOWN, 0.53, (0.50, 0.56), AR, id="decrease-low-end-reaches"),
        pytest.param(BOUNCE_DOWN, 0.53, (0.526, 0.534), OFF, id="decrease-whole-interval-off"),
        # Decrease KPI, interval *above* the point is irrelevant: high end 0.60 is worse.
        pytest.param(BOUNCE_DOWN, 0.53, (0.528, 0.60), OFF, id="decrease-high-end-ignored"),
    ],
)
def test_score_value_with_interval(goal, value, interval, status):
    score = score_value(goal, value, HALFWAY, 1000, interval)
    assert score.status is status
    assert (score.ci_low, score.ci_high) == interval


@pytest.mark.parametrize(
    ("numerator", "denominator", "status", "ci"),
    [
        # 1,000 sessions at 2.2 %: the Wilson 95 % interval [0.014573, 0.033086] reaches the
        # band edge 0.0225 -> at risk (without the interval 0.022 < 0.0225 says off track).
        pytest.param(22, 1000, AR, (0.014573, 0.033086), id="small-n"),
        # 100,000 sessions at 2.2 %: [0.021109, 0.022928] still reaches 0.0225 -> at risk ...
        pytest.param(2200, 100_000, AR, (0.021109, 0.022928), id="large-n-reaching"),
        # ... and at 2.1 % on 100,000 the interval [0.020130, 0.021907] lies wholly below.
        pytest.param(2100, 100_000, OFF, (0.020130, 0.021907), id="large-n-off"),
        # No sessions at all: no rate, no interval.
        pytest.param(0, 0, NA, (None, None), id="zero-denominator"),
        # 0 purchases in 1,000 sessions is a rate (0 %), with interval [0, 0.00383]: off.
        pytest.param(0, 1000, OFF, (0.0, 0.003827), id="zero-numerator"),
        # Under min_denominator (500): insufficient, though the interval can be computed.
        pytest.param(1, 400, NA, (None, None), id="under-min-denominator"),
    ],
)
def test_score_counts_uses_the_wilson_interval(numerator, denominator, status, ci):
    goal = dataclasses.replace(RATE_UP, interval=True)
    score = score_counts(goal, numerator, denominator, HALFWAY)
    assert score.status is status
    if ci == (None, None):
        assert score.ci_low is None or status is NA
    else:
        assert (score.ci_low, score.ci_high) == pytest.approx(ci, abs=1e-6)


def test_baseline_equal_to_target_is_a_flat_path():
    # "Hold 5 %": the path is flat, expected = target everywhere; meeting it is achieved and
    # a dip is judged against a band around 5 % (relative 10 % -> 0.005).
    hold = Goal(Direction.INCREASE, 0.05, BASELINE_DAY, 0.05, DEADLINE, tolerance=0.10)
    assert expected_on_path(hold, HALFWAY) == 0.05
    assert score_value(hold, 0.05, HALFWAY).status is A
    assert score_value(hold, 0.046, HALFWAY).status is AR
    assert score_value(hold, 0.044, HALFWAY).status is OFF


# --------------------------------------------------------------------------- projection


@pytest.mark.parametrize(
    ("forecast", "judged_on", "projected"),
    [
        # The whole interval meets the 0.030 target: achieved by the deadline.
        pytest.param(Forecast(0.032, 0.0305, 0.034, 3), HALFWAY, A, id="surely-reaches-target"),
        # The forecast meets it but its interval reaches below: on track, not yet achieved
        # (a wild extrapolation must not promise the target).
        pytest.param(Forecast(0.031, 0.029, 0.033, 3), HALFWAY, OT, id="may-reach-target"),
        # Forecast 0.026 misses by 0.004 > band 0.003, but its interval top 0.0275 reaches
        # the 0.027 edge: at risk, not off track.
        pytest.param(Forecast(0.026, 0.0245, 0.0275, 3), HALFWAY, AR, id="interval-reaches"),
        # Whole interval below the edge: off track.
        pytest.param(Forecast(0.026, 0.025, 0.0265, 3), HALFWAY, OFF, id="interval-below"),
        # No forecast (fewer than three periods): no projection.
        pytest.param(None, HALFWAY, None, id="no-forecast"),
        # Deadline passed: the outcome is measured, nothing is projected.
        pytest.param(Forecast(0.031, 0.029, 0.033, 3), AFTER_DEADLINE, None, id="deadline-passed"),
    ],
)
def test_project_status(forecast, judged_on, projected):
    assert project_status(RATE_UP, forecast, judged_on) is projected


# --------------------------------------------------------------------------- holds


@pytest.mark.parametrize(
    ("period_end", "partial", "window", "flags", "reason"),
    [
        # GA4 revises the last 3 days: a week ending on the as-of day (Jan 11) is provisional,
        pytest.param("2026-01-11", False, 3, None, "provisional", id="ends-on-as-of"),
        # as is one ending 2 days before; one ending 3 days before has settled.
        pytest.param("2026-01-09", False, 3, None, "provisional", id="inside-window"),
        pytest.param("2026-01-08", False, 3, None, None, id="just-settled"),
        # CSV-only plans have no revision window: nothing is provisional.
        pytest.param("2026-01-11", False, 0, None, None, id="csv-only"),
        # Sampled or thresholded data is held whatever its age, and both reasons show.
        pytest.param("2026-01-01", False, 3, "sampled,thresholded", "sampled,thresholded"),
        pytest.param("2026-01-11", False, 3, "sampled", "provisional,sampled", id="both"),
        # A partial period never alerts, so it carries no hold.
        pytest.param("2026-01-18", True, 3, "sampled", None, id="partial"),
    ],
)
def test_hold_reason(period_end, partial, window, flags, reason):
    as_of = D("2026-01-11")
    assert hold_reason(D(period_end), as_of, partial, window, flags) == reason


# --------------------------------------------------------------------------- frame forecast

# Weeks W02..W04 of 2026 and a partial W05, for a goal 0.02 (Jan 1) -> 0.03 (Thu Feb 5).
# The closed weeks carry the reference fit of test_forecast.py: values 0.020, 0.021, 0.023
# on 1000, 1000, 2000 sessions, midpoints 7 days apart; Feb 5 is x = 4 weeks from W02's
# midpoint -> forecast 0.026 ± 0.001·z·sqrt(6/11).
FEB5 = Goal(
    Direction.INCREASE,
    0.02,
    D("2026-01-01"),
    0.03,
    D("2026-02-05"),
    tolerance=0.10,
    interval=True,
    confidence=0.9544997361036416,  # z = 2
    bounds=(0.0, 1.0),
)


def test_score_frame_fills_intervals_and_forecasts():
    weeks = ["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"]
    values = pd.DataFrame(
        {
            "kpi_id": "conv",
            "grain": "week",
            "segment_type": "all",
            "segment": "all",
            "period_start": pd.to_datetime(weeks),
            "period_end": pd.to_datetime(weeks) + pd.Timedelta(days=6),
            "numerator": [20.0, 21.0, 46.0, 10.0],
            "denominator": [1000.0, 1000.0, 2000.0, 300.0],
            "value": [0.020, 0.021, 0.023, 10 / 300],
            "is_partial": [False, False, False, True],
            "as_of_date": pd.to_datetime("2026-01-27"),
        }
    ).astype({"period_start": "datetime64[s]", "period_end": "datetime64[s]"})
    scored = score_frame(values, {"conv": FEB5}, forecast_periods=8)
    half = 0.001 * 2 * math.sqrt(6 / 11)
    # W02, W03: fewer than three closed periods so far -> no forecast.
    assert scored["forecast_at_deadline"].isna().tolist() == [True, True, False, False]
    # W04 (closed) and partial W05 both see the three closed weeks.
    for row in (2, 3):
        assert scored.loc[row, "forecast_at_deadline"] == pytest.approx(0.026, abs=1e-9)
        assert scored.loc[row, "forecast_low"] == pytest.approx(0.026 - half, abs=1e-9)
        assert scored.loc[row, "forecast_high"] == pytest.approx(0.026 + half, abs=1e-9)
    # 0.026 + 0.00148 = 0.02748 reaches the 0.027 edge (band 10 % of 0.03): at risk.
    assert scored["projected_status"].tolist() == [None, None, "at_risk", "at_risk"]
    # W02's interval, z = 2, p = 0.02, n = 1000: centre (0.02 + 0.002) / 1.004,
    # half 2·sqrt(0.0196/1000 + 1e-6) / 1.004 = 2·sqrt(2.06e-5) / 1.004.
    assert scored.loc[0, "ci_low"] == pytest.approx(
        (0.022 - 2 * math.sqrt(2.06e-5)) / 1.004, abs=1e-9
    )
    assert scored.loc[0, "ci_high"] == pytest.approx(
        (0.022 + 2 * math.sqrt(2.06e-5)) / 1.004, abs=1e-9
    )


# --------------------------------------------------------------------------- hold windows


@pytest.fixture(scope="module")
def demo_plan():
    return load_plan(Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml").plan


def _with_sources(plan, **update):
    return plan.model_copy(update={"sources": plan.sources.model_copy(update=update)})


def test_revision_window_comes_from_the_ga4_sources_feeding_the_kpis(demo_plan):
    ga4 = [Ga4Source(id="a", property_id="1"), Ga4Source(id="b", property_id="2", lookback_days=5)]
    # CSV exports only: files do not revise themselves, no window.
    assert revision_window_days(demo_plan) == 0
    # GA4 properties: the longest lookback (default 3, here 5) is still being revised.
    assert revision_window_days(_with_sources(demo_plan, ga4=ga4)) == 5
    # GA4 declared but the CSV exports chosen to feed the KPIs: GA4 revisions don't matter.
    chosen_csv = _with_sources(demo_plan, ga4=ga4, traffic_source="csv_exports")
    assert revision_window_days(chosen_csv) == 0


def test_hold_windows_take_the_longer_of_revisions_and_rule_hold_hours(demo_plan):
    plan = _with_sources(demo_plan, ga4=[Ga4Source(id="a", property_id="1")])  # 3 days
    alerts = plan.alerts.model_copy(
        update={"rules": [AlertRule(grains=["month"], hold_hours=100), AlertRule(grains=["week"])]}
    )
    # Months wait 100 h = 4.17 -> 5 whole days; weeks and the rest the GA4 3 days.
    assert hold_windows(plan.model_copy(update={"alerts": alerts})) == {
        "day": 3,
        "week": 3,
        "month": 5,
        "quarter": 3,
    }
