"""The report as data: objectives in priority order, their KPIs, one panel per KPI and grain.

Pure functions from the frames read from the warehouse (`frames.py`) and the plan: no SQL,
no drawing, no HTML. Every sentence a person reads comes from `kpi_pipeline.reports.wording`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from kpi_pipeline.metrics.scoring import Goal
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.plan.models import Grain, Kpi, Objective
from kpi_pipeline.reports.html.frames import ReportFrames
from kpi_pipeline.reports.wording import (
    describe_hold,
    describe_period,
    describe_period_to_date,
    format_date,
    is_missing,
)

GRAIN_ORDER = tuple(Grain)
GRAIN_NOUNS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter"}


@dataclass(frozen=True)
class PeriodPoint:
    """One period of a KPI at one grain, whole site: a point of its chart."""

    start: dt.date
    end: dt.date
    label: str
    value: float | None
    expected: float | None
    ci_low: float | None
    ci_high: float | None
    status: str
    is_partial: bool
    hold_reason: str | None
    quality_flags: str | None

    @property
    def midpoint(self) -> dt.date:
        """Where the period is drawn: its middle day, as the forecast places it."""
        return self.start + (self.end - self.start) / 2

    @property
    def marked(self) -> bool:
        """Held (provisional) or flagged (sampled, thresholded, a data check)."""
        return bool(self.hold_reason or self.quality_flags)


@dataclass(frozen=True)
class Forecast:
    value: float
    low: float
    high: float
    projected_status: str | None


@dataclass(frozen=True)
class TacticGap:
    rank: int
    tactic: str
    value: float | None
    expected: float | None
    gap: float | None  # signed: negative is behind the path
    denominator: float | None
    status: str


@dataclass(frozen=True)
class Panel:
    """One KPI at one grain: its chart, its latest closed period in words, its tactics."""

    chart_id: str
    kpi: Kpi
    goal: Goal
    grain: str
    points: tuple[PeriodPoint, ...]
    latest: PeriodPoint | None  # the latest closed period
    summary: str  # the latest closed period in a sentence
    to_date: str | None  # the current partial period against the same days before
    forecast: Forecast | None
    forecast_from: PeriodPoint | None  # the closed period the forecast line starts at
    tactics: tuple[TacticGap, ...]
    tactics_period: str | None


@dataclass(frozen=True)
class ObjectiveSection:
    objective: Objective
    days_left: int
    rollup: tuple[tuple[str, str], ...]  # (grain, status) in grain order
    kpis: tuple[tuple[Kpi, tuple[Panel, ...]], ...]


@dataclass(frozen=True)
class HeldPeriod:
    kpi_label: str
    grain: str
    period: str
    reason: str


@dataclass(frozen=True)
class Report:
    organization: str
    mission: str
    plan_id: str
    plan_hash: str
    as_of: dt.date
    snapshot_run: str | None
    objectives: tuple[ObjectiveSection, ...]
    held: tuple[HeldPeriod, ...]
    frames: ReportFrames


def build_report(frames: ReportFrames, loaded: LoadedPlan) -> Report:
    plan = loaded.plan
    confidence = plan.scoring.confidence
    sections = []
    for objective in sorted(plan.objectives, key=lambda o: (o.priority, o.id)):
        kpis = tuple(
            (kpi, _panels(frames, kpi, Goal.of(kpi, confidence))) for kpi in objective.kpis
        )
        sections.append(
            ObjectiveSection(
                objective=objective,
                days_left=(objective.deadline - frames.as_of).days,
                rollup=_rollup(frames.objectives, objective.id),
                kpis=kpis,
            )
        )
    return Report(
        organization=plan.organization,
        mission=plan.mission,
        plan_id=loaded.plan_id,
        plan_hash=loaded.plan_hash,
        as_of=frames.as_of,
        snapshot_run=frames.snapshot_run,
        objectives=tuple(sections),
        held=_held_periods(frames.scores, plan),
        frames=frames,
    )


def chart_id(kpi_id: str, grain: str) -> str:
    return f"chart-{kpi_id}-{grain}"


def _panels(frames: ReportFrames, kpi: Kpi, goal: Goal) -> tuple[Panel, ...]:
    mine = frames.scores[frames.scores["kpi_id"] == kpi.id]
    panels = []
    for grain in (g.value for g in GRAIN_ORDER if g in kpi.grains):
        rows = mine[mine["grain"] == grain].sort_values("period_start", kind="stable")
        if rows.empty:
            continue
        points = tuple(_point(row) for row in rows.to_dict("records"))
        closed = rows[~rows["is_partial"]]
        latest_row = closed.iloc[-1].to_dict() if not closed.empty else None
        latest = _point(latest_row) if latest_row else None
        context = {"kind": kpi.kind.value, "direction": kpi.direction.value}
        summary = (
            describe_period({**latest_row, **context}, kpi.target.by)
            if latest_row
            else "no closed period yet"
        )
        panels.append(
            Panel(
                chart_id=chart_id(kpi.id, grain),
                kpi=kpi,
                goal=goal,
                grain=grain,
                points=points,
                latest=latest,
                summary=summary,
                to_date=_to_date(frames.to_date, kpi, grain),
                forecast=_forecast(latest_row),
                forecast_from=_forecast_start(points),
                tactics=_tactics(frames.tactics, kpi.id, grain),
                tactics_period=_tactics_period(frames.tactics, kpi.id, grain),
            )
        )
    return tuple(panels)


def _point(row: dict) -> PeriodPoint:
    return PeriodPoint(
        start=row["period_start"],
        end=row["period_end"],
        label=str(row["period_label"]),
        value=_number(row["value"]),
        expected=_number(row["expected"]),
        ci_low=_number(row["ci_low"]),
        ci_high=_number(row["ci_high"]),
        status=str(row["status"]),
        is_partial=bool(row["is_partial"]),
        hold_reason=None if is_missing(row["hold_reason"]) else str(row["hold_reason"]),
        quality_flags=None if is_missing(row["quality_flags"]) else str(row["quality_flags"]),
    )


def _number(value: object) -> float | None:
    return None if is_missing(value) else float(value)


def _forecast(row: dict | None) -> Forecast | None:
    if row is None or any(
        is_missing(row[c]) for c in ("forecast_at_deadline", "forecast_low", "forecast_high")
    ):
        return None
    projected = None if is_missing(row["projected_status"]) else str(row["projected_status"])
    return Forecast(
        float(row["forecast_at_deadline"]),
        float(row["forecast_low"]),
        float(row["forecast_high"]),
        projected,
    )


def _forecast_start(points: tuple[PeriodPoint, ...]) -> PeriodPoint | None:
    closed = [p for p in points if not p.is_partial and p.value is not None]
    return closed[-1] if closed else None


def _to_date(to_date: pd.DataFrame, kpi: Kpi, grain: str) -> str | None:
    if to_date.empty:
        return None
    rows = to_date[(to_date["kpi_id"] == kpi.id) & (to_date["grain"] == grain)]
    if rows.empty:
        return None
    latest = rows.sort_values("period_start").iloc[-1].to_dict()
    return describe_period_to_date(latest, kpi.kind.value)


def _tactics(tactics: pd.DataFrame, kpi_id: str, grain: str) -> tuple[TacticGap, ...]:
    if tactics.empty:
        return ()
    rows = tactics[(tactics["kpi_id"] == kpi_id) & (tactics["grain"] == grain)]
    return tuple(
        TacticGap(
            rank=int(r["rank"]),
            tactic=str(r["tactic"]),
            value=_number(r["value"]),
            expected=_number(r["expected"]),
            gap=_number(r["gap"]),
            denominator=_number(r["denominator"]),
            status=str(r["status"]),
        )
        for r in rows.sort_values("rank").to_dict("records")
    )


def _tactics_period(tactics: pd.DataFrame, kpi_id: str, grain: str) -> str | None:
    if tactics.empty:
        return None
    rows = tactics[(tactics["kpi_id"] == kpi_id) & (tactics["grain"] == grain)]
    return None if rows.empty else str(rows["period_label"].iloc[0])


def _rollup(objectives: pd.DataFrame, objective_id: str) -> tuple[tuple[str, str], ...]:
    if objectives.empty:
        return ()
    mine = objectives[objectives["objective_id"] == objective_id]
    by_grain = dict(zip(mine["grain"], mine["status"], strict=True))
    return tuple((g.value, by_grain[g.value]) for g in GRAIN_ORDER if g.value in by_grain)


def _held_periods(scores: pd.DataFrame, plan) -> tuple[HeldPeriod, ...]:
    labels = {k.id: k.label for _, k in plan.iter_kpis()}
    reasons = scores["hold_reason"].where(scores["hold_reason"].notna(), scores["quality_flags"])
    held = scores[reasons.notna()].assign(reason=reasons[reasons.notna()])
    return tuple(
        HeldPeriod(
            kpi_label=labels.get(r["kpi_id"], r["kpi_id"]),
            grain=r["grain"],
            period=str(r["period_label"]),
            reason=describe_hold(r["reason"]) or str(r["reason"]),
        )
        for r in held.sort_values(["kpi_id", "grain", "period_start"]).to_dict("records")
    )


def deadline_words(objective: Objective, days_left: int) -> str:
    when = format_date(objective.deadline)
    if days_left > 0:
        return f"deadline {when} · {days_left} day{'s' if days_left != 1 else ''} left"
    if days_left == 0:
        return f"deadline {when} · today"
    return f"deadline {when} · passed {-days_left} days ago"


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
