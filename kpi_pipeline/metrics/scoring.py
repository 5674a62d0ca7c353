"""Score a KPI value against the straight path from its baseline to its target.

Pure functions over plain values: the same rules score a day in a test and a quarter in the
warehouse. A rate carries its Wilson interval, so a dip on a few hundred sessions is not
called off track unless the whole interval is; every series gets a forecast at its deadline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from kpi_pipeline.metrics.forecast import Forecast, PeriodPoint, forecast_at_deadline
from kpi_pipeline.metrics.intervals import wilson_interval
from kpi_pipeline.metrics.score_columns import SCORED_COLUMNS
from kpi_pipeline.plan.models import Direction, Grain, Kpi, KpiKind, Plan, ToleranceMode

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
    # Rates (numerator <= denominator) are judged with their Wilson interval at `confidence`.
    interval: bool = False
    confidence: float = 0.95
    # Values the KPI can take (a rate lies in [0, 1]); forecasts are clipped to them.
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.target_date <= self.baseline_date:
            raise ValueError(
                f"target date {self.target_date} must be after the baseline {self.baseline_date}"
            )

    @classmethod
    def of(cls, kpi: Kpi, confidence: float = 0.95) -> Goal:
        bounds = None
        if kpi.is_rate:
            bounds = (0.0, 1.0)
        elif kpi.kind in (KpiKind.VOLUME, KpiKind.USERS):
            bounds = (0.0, math.inf)
        return cls(
            direction=kpi.direction,
            baseline_value=kpi.baseline.value,
            baseline_date=kpi.baseline.as_of,
            target_value=kpi.target.value,
            target_date=kpi.target.by,
            tolerance=kpi.tolerance,
            tolerance_mode=kpi.tolerance_mode,
            min_denominator=kpi.min_denominator,
            interval=kpi.is_rate,
            confidence=confidence,
            bounds=bounds,
        )


@dataclass(frozen=True)
class Score:
    expected: float
    status: Status
    tolerance_band: float  # how far behind `expected` still counts as at_risk
    # Interval around the value (rates); the forecast is filled by `forecast_frame`.
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


def expected_over(goal: Goal, first: dt.date, last: dt.date) -> float:
    """The path's average over the days `first`..`last` (inclusive): what a period's value,
    itself a total over those days, is compared with. On a straight stretch it is the path's
    value at the midpoint; days before the baseline count at the baseline, days after the
    deadline at the target (the path is flat there).
    """
    if last < first:
        raise ValueError(f"no days to average over: {first}..{last}")
    span = (goal.target_date - goal.baseline_date).days
    # Days as offsets from the baseline date, split into before / along / after the path.
    start, end = (first - goal.baseline_date).days, (last - goal.baseline_date).days
    total = 0.0
    before = max(0, min(end, -1) - start + 1)  # offsets < 0
    total += before * goal.baseline_value
    after = max(0, end - max(start, span + 1) + 1)  # offsets > span
    total += after * goal.target_value
    lo, hi = max(start, 0), min(end, span)
    if hi >= lo:
        slope = (goal.target_value - goal.baseline_value) / span
        count = hi - lo + 1
        total += count * goal.baseline_value + slope * (lo + hi) * count / 2
    return total / (end - start + 1)


def tolerance_band(goal: Goal, expected: float) -> float:
    if goal.tolerance_mode is ToleranceMode.ABSOLUTE:
        return goal.tolerance
    return goal.tolerance * abs(expected)


def score_value(
    goal: Goal,
    value: float | None,
    on: dt.date,
    denominator: float | None = None,
    interval: tuple[float, float] | None = None,
    expected: float | None = None,
) -> Score:
    """Status of `value` measured for a period ending `on` (direction aware), against
    `expected` (default: the path's value on `on`; see `expected_over` for a period).

    - insufficient_data: no value, or a rate whose denominator is under `min_denominator`;
    - achieved: the target itself is met — with an `interval`, by the whole interval (its
      least favourable end), just as off_track needs the whole interval beyond the band;
    - on_track: at or ahead of the path's expected value;
    - at_risk: behind, but within the tolerance band — or, when an `interval` is given,
      behind by more than the band while the interval still reaches the band;
    - off_track: behind by more than the band (with an interval: the *whole* interval is).
    """
    expected = expected_on_path(goal, on) if expected is None else expected
    band = tolerance_band(goal, expected)
    low, high = interval if interval is not None else (None, None)
    if (
        value is None
        or math.isnan(value)
        or (denominator is not None and denominator < goal.min_denominator)
    ):
        return Score(expected, Status.INSUFFICIENT_DATA, band, low, high)
    sign = 1.0 if goal.direction is Direction.INCREASE else -1.0
    # The least favourable value still plausible: the interval's near end.
    worst = value if interval is None else (interval[0] if sign > 0 else interval[1])
    ahead_of_target = sign * (worst - goal.target_value)
    ahead_of_path = sign * (value - expected)
    # The most favourable value still plausible: the interval's far end in the good direction.
    best = value if interval is None else (interval[1] if sign > 0 else interval[0])
    best_ahead_of_path = sign * (best - expected)
    if ahead_of_target >= -_EPSILON:
        status = Status.ACHIEVED
    elif ahead_of_path >= -_EPSILON:
        status = Status.ON_TRACK
    elif max(ahead_of_path, best_ahead_of_path) >= -band - _EPSILON:
        status = Status.AT_RISK
    else:
        status = Status.OFF_TRACK
    return Score(expected, status, band, low, high)


def score_counts(
    goal: Goal,
    numerator: float | None,
    denominator: float | None,
    on: dt.date,
    expected: float | None = None,
) -> Score:
    """Score a rate from its counts: value = numerator / denominator, with its Wilson interval
    when the goal asks for one (a zero denominator has no value: insufficient_data)."""
    if numerator is None or denominator is None or denominator <= 0:
        return score_value(goal, None, on, denominator, expected=expected)
    # A count outside [0, denominator] (more form submits than starts on a day: sessions
    # straddle midnight) is no proportion: judged by its value alone, without an interval.
    proportion = 0 <= numerator <= denominator
    interval = (
        wilson_interval(numerator, denominator, goal.confidence)
        if goal.interval and proportion
        else None
    )
    return score_value(goal, numerator / denominator, on, denominator, interval, expected)


def project_status(goal: Goal, forecast: Forecast | None, judged_on: dt.date) -> Status | None:
    """Where the forecast lands at the deadline, judged like a value with its interval.

    Projected `achieved` needs the whole interval to meet the target (a forecast that meets
    it with an interval reaching below is `on_track`), just as `off_track` needs the whole
    interval beyond the band. None without a forecast, or once the deadline has passed (the
    outcome is measured, not projected).
    """
    if forecast is None or judged_on > goal.target_date:
        return None
    interval = (forecast.low, forecast.high)
    status = score_value(goal, forecast.value, goal.target_date, None, interval).status
    worst = forecast.low if goal.direction is Direction.INCREASE else forecast.high
    surely = score_value(goal, worst, goal.target_date).status is Status.ACHIEVED
    if status is Status.ACHIEVED and not surely:
        return Status.ON_TRACK
    return status


def hold_reason(
    period_end: dt.date,
    as_of: dt.date,
    is_partial: bool,
    window_days: int,
    quality_flags: str | None = None,
) -> str | None:
    """Why alerts on a closed period must wait: its data may still change, or is flagged.

    `provisional` while the period ends within the last `window_days` loaded days (GA4
    revises recent days: a period ending on day `as_of - window_days` has settled); the
    source's quality flags (`sampled`, `thresholded`) otherwise. None when nothing holds it;
    partial periods are never alerted, so they carry no hold.
    """
    if is_partial:
        return None
    reasons = []
    if window_days > 0 and period_end > as_of - dt.timedelta(days=window_days):
        reasons.append("provisional")
    if quality_flags:
        reasons.extend(flag.strip() for flag in quality_flags.split(",") if flag.strip())
    return ",".join(reasons) or None


# The columns `score_frame` adds, as `kpi_scores` declares them.
SCORE_COLUMNS = list(SCORED_COLUMNS)


def score_frame(
    values: pd.DataFrame, goals: Mapping[str, Goal], forecast_periods: int = 8
) -> pd.DataFrame:
    """Score every row of a `kpi_values`-shaped frame (already aggregated, one row a period).

    A period is compared with the path's average over the days it covers (`covered_from`
    to `covered_to`: its own days with data, so a period cut by the start of history or the
    current one is judged on the days it has); without those columns, over the period's
    days up to `as_of_date` when partial. It is judged as of its last covered day. Rates whose
    goal asks for an interval get their Wilson interval from numerator and denominator. When
    the frame carries the series columns (grain, segment, period_start) each row also gets
    the forecast at its deadline from the last `forecast_periods` closed periods.
    """
    scored = values.copy()
    if "covered_to" in scored:
        first_day = pd.to_datetime(scored["covered_from"])
        judged_on = pd.to_datetime(scored["covered_to"])
    else:
        judged_on = pd.to_datetime(
            scored["period_end"].where(~scored["is_partial"], scored["as_of_date"])
        )
        # Without the period's first day, the value is compared with the path on one day.
        first_day = (
            pd.to_datetime(scored["period_start"]) if "period_start" in scored else judged_on
        )
    numerators = scored["numerator"] if "numerator" in scored else [None] * len(scored)
    records = []
    for kpi_id, num, value, den, first, on in zip(
        scored["kpi_id"],
        numerators,
        scored["value"],
        scored["denominator"],
        first_day,
        judged_on,
        strict=True,
    ):
        goal = goals[kpi_id]
        num, value, den = _none_if_nan(num), _none_if_nan(value), _none_if_nan(den)
        expected = expected_over(goal, first.date(), on.date())
        if goal.interval and num is not None and den is not None:
            score = score_counts(goal, num, den, on.date(), expected)
        else:
            score = score_value(goal, value, on.date(), den, expected=expected)
        records.append((goal, score))
    scored["expected"] = [score.expected for _, score in records]
    scored["target"] = [goal.target_value for goal, _ in records]
    scored["tolerance_band"] = [score.tolerance_band for _, score in records]
    scored["status"] = [score.status.value for _, score in records]
    scored["ci_low"] = pd.Series(
        [s.ci_low for _, s in records], dtype="float64", index=scored.index
    )
    scored["ci_high"] = pd.Series(
        [s.ci_high for _, s in records], dtype="float64", index=scored.index
    )
    for column in ("forecast_at_deadline", "forecast_low", "forecast_high"):
        scored[column] = pd.Series([None] * len(scored), dtype="float64", index=scored.index)
    scored["projected_status"] = pd.Series([None] * len(scored), dtype="object", index=scored.index)
    if set(_SERIES).issubset(scored.columns) and "period_start" in scored:
        _add_forecasts(scored, goals, judged_on, forecast_periods)
    return scored[[*values.columns, *SCORE_COLUMNS]]


_SERIES = ["kpi_id", "grain", "segment_type", "segment"]


def _add_forecasts(
    scored: pd.DataFrame, goals: Mapping[str, Goal], judged_on: pd.Series, last_n: int
) -> None:
    """Fill the forecast columns in place: each row from the closed periods up to its own."""
    forecasts: dict[object, tuple[Forecast | None, Status | None]] = {}
    order = scored.sort_values([*_SERIES, "period_start"], kind="stable")
    for _, series in order.groupby(_SERIES, sort=False, dropna=False):
        goal = goals[series["kpi_id"].iloc[0]]
        history: list[PeriodPoint] = []
        for index, row in series.iterrows():
            closed = not bool(row["is_partial"])
            if closed and row["status"] != Status.INSUFFICIENT_DATA.value:
                weight = _none_if_nan(row["denominator"])
                history.append(
                    PeriodPoint(
                        pd.Timestamp(row["period_start"]).date(),
                        pd.Timestamp(row["period_end"]).date(),
                        float(row["value"]),
                        1.0 if weight is None else weight,
                    )
                )
            on = judged_on.loc[index].date()
            forecast = None
            if on <= goal.target_date:
                forecast = forecast_at_deadline(
                    history[-last_n:], goal.target_date, last_n, goal.confidence, goal.bounds
                )
            forecasts[index] = (forecast, project_status(goal, forecast, on))
    values = {
        "forecast_at_deadline": lambda f: f.value,
        "forecast_low": lambda f: f.low,
        "forecast_high": lambda f: f.high,
    }
    for column, pick in values.items():
        filled = {i: pick(f) for i, (f, _) in forecasts.items() if f is not None}
        scored[column] = pd.Series(filled, index=scored.index, dtype="float64")
    projected = {i: p.value for i, (_, p) in forecasts.items() if p is not None}
    scored["projected_status"] = pd.Series(
        [projected.get(i) for i in scored.index], index=scored.index, dtype="object"
    )


def revision_window_days(plan: Plan) -> int:
    """Days GA4 may still revise: the largest `lookback_days` of a GA4 source feeding the
    KPIs; 0 for a plan fed by CSV exports only (a file is as final as it will get)."""
    sources = getattr(plan.sources, "ga4", None) or []
    chosen = getattr(plan.sources, "traffic_source", None)
    if not sources or chosen not in (None, "ga4"):
        return 0
    return max(int(getattr(source, "lookback_days", 3)) for source in sources)


def hold_windows(plan: Plan) -> dict[str, int]:
    """{grain: days} a closed period is provisional for: the revision window, or longer when
    an alert rule for the grain asks to hold for more hours (rounded up to whole days)."""
    revision = revision_window_days(plan)
    windows = {grain.value: revision for grain in Grain}
    for rule in plan.alerts.rules:
        for grain in rule.grains:
            windows[grain] = max(windows[grain], math.ceil(rule.hold_hours / 24))
    return windows


def with_hold_reasons(
    scored: pd.DataFrame,
    windows: Mapping[str, int],
    latest_as_of: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """`scored` plus `hold_reason` (see `hold_reason`), from `quality_flags` when present.

    A period settles with the KPI's later data: the revision window runs back from the last
    day the KPI's sources covered (its latest `as_of_date`), not from the period's own last
    covered day (which, for a closed period, is its end)."""
    flags = scored["quality_flags"] if "quality_flags" in scored else [None] * len(scored)
    # `latest_as_of` ({kpi_id: day}) when `scored` holds only part of a KPI's periods.
    if latest_as_of is None:
        latest = pd.to_datetime(scored["as_of_date"]).groupby(scored["kpi_id"]).transform("max")
    else:
        latest = pd.to_datetime(scored["kpi_id"].map(latest_as_of))
    reasons = [
        hold_reason(
            pd.Timestamp(end).date(),
            pd.Timestamp(as_of).date(),
            bool(partial),
            windows.get(grain, 0),
            None if flag is None or pd.isna(flag) else str(flag),
        )
        for grain, end, as_of, partial, flag in zip(
            scored["grain"],
            scored["period_end"],
            latest,
            scored["is_partial"],
            flags,
            strict=True,
        )
    ]
    return scored.assign(hold_reason=pd.Series(reasons, index=scored.index, dtype="object"))


def _none_if_nan(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)
