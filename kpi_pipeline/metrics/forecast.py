"""Forecast a KPI at its deadline from its recent closed periods.

Weighted least squares of the period values on time, each period weighted by its
denominator (sessions, form starts): a week of 20,000 sessions says more about the trend
than a week of 200. The interval is the confidence interval of the fitted line at the
deadline, `forecast ± z · s · sqrt(1/Σw + (x₀ - x̄)² / Sxx)` with `s²` the weighted residual
variance on n - 2 degrees of freedom (a normal quantile: the trend is uncertain enough
without pretending to know its distribution better).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from kpi_pipeline.metrics.intervals import z_score

# A line through fewer points has no residual to estimate its own uncertainty from.
MIN_POINTS = 3


@dataclass(frozen=True)
class Forecast:
    value: float
    low: float
    high: float
    points: int  # periods the line was fitted on


@dataclass(frozen=True)
class PeriodPoint:
    """One closed period: its dates, its value and the weight (denominator) behind it."""

    start: dt.date
    end: dt.date
    value: float
    weight: float

    @property
    def midpoint(self) -> float:
        """Days since 1970-01-01 of the period's middle (a week is judged at its Thursday)."""
        return (_days(self.start) + _days(self.end)) / 2.0


def weighted_linear_forecast(
    xs: Sequence[float],
    ys: Sequence[float],
    weights: Sequence[float],
    at: float,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Forecast | None:
    """Value of the weighted least-squares line through (xs, ys) at `at`, with its interval.

    Points with a zero, negative or NaN weight or value are ignored. None when fewer than
    three points remain or they all share one x. `bounds` clips value and interval (a rate
    cannot be forecast below 0 or above 1).
    """
    points = [
        (x, y, w)
        for x, y, w in zip(xs, ys, weights, strict=True)
        if w > 0 and not math.isnan(w) and not math.isnan(y)
    ]
    n = len(points)
    if n < MIN_POINTS:
        return None
    total = sum(w for _, _, w in points)
    x_bar = sum(w * x for x, _, w in points) / total
    y_bar = sum(w * y for _, y, w in points) / total
    sxx = sum(w * (x - x_bar) ** 2 for x, _, w in points)
    if sxx <= 0:
        return None
    sxy = sum(w * (x - x_bar) * (y - y_bar) for x, y, w in points)
    slope = sxy / sxx
    intercept = y_bar - slope * x_bar
    residual_variance = sum(w * (y - intercept - slope * x) ** 2 for x, y, w in points) / (n - 2)
    value = intercept + slope * at
    half = z_score(confidence) * math.sqrt(
        residual_variance * (1.0 / total + (at - x_bar) ** 2 / sxx)
    )
    low, high = value - half, value + half
    if bounds is not None:
        value, low, high = (min(max(v, bounds[0]), bounds[1]) for v in (value, low, high))
    return Forecast(value, low, high, n)


def forecast_at_deadline(
    history: Sequence[PeriodPoint],
    deadline: dt.date,
    last_n: int = 8,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Forecast | None:
    """Forecast at `deadline` from the last `last_n` closed periods of `history` (any order).

    x is a period's midpoint in days since 1970-01-01 and the deadline's own day number.
    Periods with no weight (zero denominator, insufficient data passed as weight 0) or no
    value are left out before the last `last_n` are taken.
    """
    usable = [p for p in history if p.weight > 0 and not math.isnan(p.value)]
    recent = sorted(usable, key=lambda p: p.start)[-last_n:]
    return weighted_linear_forecast(
        [p.midpoint for p in recent],
        [p.value for p in recent],
        [p.weight for p in recent],
        at=float(_days(deadline)),
        confidence=confidence,
        bounds=bounds,
    )


def _days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days
