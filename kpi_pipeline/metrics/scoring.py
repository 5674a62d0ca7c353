"""Score a KPI value against the straight path from its baseline to its target.

Pure functions over plain values: the same rules score a day in a test and a quarter in the
warehouse. A later step adds confidence intervals and forecasts; `Score` keeps room for them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from kpi_pipeline.plan.models import Direction, Kpi, ToleranceMode

# Values this close to a boundary count as on it: floats from sums of counts are not exact.
_EPSILON = 1e-12


class Status(StrEnum):
    ACHIEVED = "achieved"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Goal:
    """What a KPI aims at: the scoring-relevant part of a plan KPI."""

    direction: Direction
    baseline_value: float
    baseline_date: dt.date
    target_value: float
    target_date: dt.date
    tolerance: float = 0.0
    tolerance_mode: ToleranceMode = ToleranceMode.RELATIVE
    min_denominator: float = 0.0

    def __post_init__(self) -> None:
        if self.target_date <= self.baseline_date:
            raise ValueError(
                f"target date {self.target_date} must be after the baseline {self.baseline_date}"
            )

    @classmethod
    def of(cls, kpi: Kpi) -> Goal:
        return cls(
            direction=kpi.direction,
            baseline_value=kpi.baseline.value,
            baseline_date=kpi.baseline.as_of,
            target_value=kpi.target.value,
            target_date=kpi.target.by,
            tolerance=kpi.tolerance,
            tolerance_mode=kpi.tolerance_mode,
            min_denominator=kpi.min_denominator,
        )


@dataclass(frozen=True)
class Score:
    expected: float
    status: Status
    tolerance_band: float  # how far behind `expected` still counts as at_risk
    # Filled by later scoring steps (interval around the value, forecast at the deadline).
    ci_low: float | None = None
    ci_high: float | None = None
    forecast_at_deadline: float | None = None
    projected_status: Status | None = None


def expected_on_path(goal: Goal, on: dt.date) -> float:
    """Value the KPI should have on `on`, moving in a straight line from baseline to target.

    Before the baseline date the expectation is the baseline; after the deadline, the target.
    """
    span = (goal.target_date - goal.baseline_date).days
    elapsed = (on - goal.baseline_date).days
    progress = min(max(elapsed / span, 0.0), 1.0)
    return goal.baseline_value + (goal.target_value - goal.baseline_value) * progress


def tolerance_band(goal: Goal, expected: float) -> float:
    if goal.tolerance_mode is ToleranceMode.ABSOLUTE:
        return goal.tolerance
    return goal.tolerance * abs(expected)


def score_value(
    goal: Goal, value: float | None, on: dt.date, denominator: float | None = None
) -> Score:
    """Status of `value` measured for a period ending `on` (direction aware).

    - insufficient_data: no value, or a rate whose denominator is under `min_denominator`;
    - achieved: the target itself is met;
    - on_track: at or ahead of the path's expected value;
    - at_risk: behind, but within the tolerance band;
    - off_track: behind by more than the band.
    """
    expected = expected_on_path(goal, on)
    band = tolerance_band(goal, expected)
    if (
        value is None
        or math.isnan(value)
        or (denominator is not None and denominator < goal.min_denominator)
    ):
        return Score(expected, Status.INSUFFICIENT_DATA, band)
    sign = 1.0 if goal.direction is Direction.INCREASE else -1.0
    ahead_of_target = sign * (value - goal.target_value)
    ahead_of_path = sign * (value - expected)
    if ahead_of_target >= -_EPSILON:
        status = Status.ACHIEVED
    elif ahead_of_path >= -_EPSILON:
        status = Status.ON_TRACK
    elif ahead_of_path >= -band - _EPSILON:
        status = Status.AT_RISK
    else:
        status = Status.OFF_TRACK
    return Score(expected, status, band)


SCORE_COLUMNS = [
    "expected",
    "target",
    "tolerance_band",
    "status",
    "ci_low",
    "ci_high",
    "forecast_at_deadline",
    "projected_status",
]


def score_frame(values: pd.DataFrame, goals: Mapping[str, Goal]) -> pd.DataFrame:
    """Score every row of a `kpi_values`-shaped frame (already aggregated, one row a period).

    A complete period is judged at its last day; a partial one at `as_of_date`, the last day
    with data, so a half-finished month is compared with where the path is today.
    """
    scored = values.copy()
    judged_on = scored["period_end"].where(~scored["is_partial"], scored["as_of_date"])
    records = [
        (
            goals[kpi_id],
            score_value(goals[kpi_id], _none_if_nan(value), on.date(), _none_if_nan(den)),
        )
        for kpi_id, value, den, on in zip(
            scored["kpi_id"],
            scored["value"],
            scored["denominator"],
            pd.to_datetime(judged_on),
            strict=True,
        )
    ]
    scored["expected"] = [score.expected for _, score in records]
    scored["target"] = [goal.target_value for goal, _ in records]
    scored["tolerance_band"] = [score.tolerance_band for _, score in records]
    scored["status"] = [score.status.value for _, score in records]
    for column in ("ci_low", "ci_high", "forecast_at_deadline"):
        scored[column] = pd.Series([None] * len(scored), dtype="float64", index=scored.index)
    scored["projected_status"] = pd.Series([None] * len(scored), dtype="object", index=scored.index)
    return scored


def _none_if_nan(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)
