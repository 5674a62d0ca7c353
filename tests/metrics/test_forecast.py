"""Weighted least-squares forecasts at the deadline, against fits worked out by hand.

The reference fit: points (0, 1), (1, 2), (2, 4) with weights 1, 1, 2.
Σw = 4, x̄ = 5/4, ȳ = 11/4, Sxx = 1.5625 + 0.0625 + 2·0.5625 = 2.75,
Sxy = 2.1875 + 0.1875 + 1.875 = 4.25 -> slope 17/11, intercept 11/4 - 17/11·5/4 = 9/11.
Residuals 2/11, -4/11, 1/11 -> Σw·r² = (4 + 16 + 2)/121 = 2/11 on n - 2 = 1 degree of
freedom: s² = 2/11. At x = 4: 9/11 + 68/11 = 7, variance s²·(1/4 + 2.75²/2.75) = 6/11.
With z = 2 the interval is 7 ± 2·sqrt(6/11).
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from kpi_pipeline.metrics.forecast import (
    PeriodPoint,
    forecast_at_deadline,
    weighted_linear_forecast,
)

Z2 = 0.9544997361036416  # confidence with z = 2
HALF = 2 * math.sqrt(6 / 11)


def test_weighted_fit_matches_the_hand_computation():
    forecast = weighted_linear_forecast([0, 1, 2], [1, 2, 4], [1, 1, 2], at=4, confidence=Z2)
    assert forecast is not None
    assert forecast.value == pytest.approx(7.0, abs=1e-9)
    assert forecast.low == pytest.approx(7.0 - HALF, abs=1e-9)
    assert forecast.high == pytest.approx(7.0 + HALF, abs=1e-9)
    assert forecast.points == 3


def test_weights_are_the_denominators_not_decoration():
    # Unweighted, the same points give slope 1.5 and intercept 5/6: 5/6 + 6 = 6.8333 at x=4.
    # The heavier last period (twice the sessions) pulls the line up to 7.
    equal = weighted_linear_forecast([0, 1, 2], [1, 2, 4], [1, 1, 1], at=4)
    assert equal.value == pytest.approx(5 / 6 + 6, abs=1e-9)
    weighted = weighted_linear_forecast([0, 1, 2], [1, 2, 4], [1, 1, 2], at=4)
    assert weighted.value - equal.value == pytest.approx(7 - (5 / 6 + 6), abs=1e-9)


def test_scaling_all_weights_changes_nothing():
    # Sessions in thousands or in units: the fit and its interval are the same.
    small = weighted_linear_forecast([0, 1, 2], [1, 2, 4], [1, 1, 2], at=4, confidence=Z2)
    large = weighted_linear_forecast([0, 1, 2], [1, 2, 4], [1000, 1000, 2000], 4, Z2)
    assert (large.value, large.low, large.high) == pytest.approx(
        (small.value, small.low, small.high), abs=1e-9
    )


def test_points_exactly_on_a_line_have_no_spread():
    # y = 0.02 + 0.001·x: zero residuals, so the interval collapses onto the forecast.
    forecast = weighted_linear_forecast([0, 1, 2, 3], [0.02, 0.021, 0.022, 0.023], [5] * 4, 10)
    assert forecast.value == pytest.approx(0.03, abs=1e-12)
    assert forecast.high - forecast.low == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("xs", "ys", "weights"),
    [
        # Two points fit any line exactly: no residual left to measure the noise with.
        pytest.param([0, 1], [1, 2], [1, 1], id="two-points"),
        # Three periods, one with a zero denominator (no sessions): only two count.
        pytest.param([0, 1, 2], [1, 2, 4], [1, 0, 1], id="zero-denominator-dropped"),
        # A NaN value (0/0 in a frame) is not a point either.
        pytest.param([0, 1, 2], [1, math.nan, 4], [1, 1, 1], id="nan-value-dropped"),
        # Every point at the same x: no slope can be fitted.
        pytest.param([3, 3, 3], [1, 2, 4], [1, 1, 1], id="same-x"),
    ],
)
def test_no_forecast_without_enough_distinct_points(xs, ys, weights):
    assert weighted_linear_forecast(xs, ys, weights, at=10) is None


def test_bounds_clip_a_rate_forecast():
    # A steep fall projected far ahead would go below zero; a rate cannot.
    forecast = weighted_linear_forecast([0, 1, 2], [0.3, 0.2, 0.1], [1, 1, 1], 10, bounds=(0, 1))
    assert (forecast.value, forecast.low) == (0.0, 0.0)


def _week(monday: str, value: float, weight: float) -> PeriodPoint:
    start = dt.date.fromisoformat(monday)
    return PeriodPoint(start, start + dt.timedelta(days=6), value, weight)


def test_forecast_at_deadline_uses_period_midpoints_and_the_last_n_periods():
    # Weeks W02..W04 of 2026 (midpoints Thu 8, 15, 22 January, 7 days apart) carry the
    # reference fit scaled to rates: y = 0.019 + 0.001·(1, 2, 4), weights 1000, 1000, 2000.
    # The deadline Thu 5 February is x = 4 weeks: 0.019 + 0.001·7 = 0.026 ± 0.001·2·sqrt(6/11).
    # An older, wild week (W01) is outside the last 3 periods and must be ignored.
    history = [
        _week("2025-12-29", 0.5, 10_000),
        _week("2026-01-19", 0.023, 2000),  # order does not matter
        _week("2026-01-05", 0.020, 1000),
        _week("2026-01-12", 0.021, 1000),
    ]
    forecast = forecast_at_deadline(history, dt.date(2026, 2, 5), last_n=3, confidence=Z2)
    assert forecast.value == pytest.approx(0.026, abs=1e-9)
    assert forecast.low == pytest.approx(0.026 - 0.001 * HALF, abs=1e-9)
    assert forecast.high == pytest.approx(0.026 + 0.001 * HALF, abs=1e-9)
    assert forecast.points == 3
