"""From KPIs to objectives: one status per objective, and which tactics drag it down.

An objective's status weighs its KPIs' latest closed statuses — each KPI's `weight` in the
plan, equal by default — as severities (on track or achieved 0, at risk 1, off track 2):
the weighted mean rounds to the objective's status (under 0.5 on track, under 1.5 at risk,
else off track); achieved only when every KPI is. `worst_of` takes the worst KPI instead.
KPIs without enough data are left out; an objective with none left is insufficient_data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.scoring import Status
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.plan.scoring import RollupMode

SEVERITY = {Status.ACHIEVED: 0, Status.ON_TRACK: 0, Status.AT_RISK: 1, Status.OFF_TRACK: 2}
_BY_SEVERITY = {0: Status.ON_TRACK, 1: Status.AT_RISK, 2: Status.OFF_TRACK}


@dataclass(frozen=True)
class KpiStatus:
    kpi_id: str
    status: Status
    weight: float = 1.0


@dataclass(frozen=True)
class ObjectiveStatus:
    status: Status
    score: float | None  # weighted mean severity (0 best, 2 worst); None without data
    kpis_scored: int


def objective_status(
    kpis: Sequence[KpiStatus], mode: RollupMode = RollupMode.WEIGHTED
) -> ObjectiveStatus:
    scored = [k for k in kpis if k.status is not Status.INSUFFICIENT_DATA]
    if not scored:
        return ObjectiveStatus(Status.INSUFFICIENT_DATA, None, 0)
    if all(k.status is Status.ACHIEVED for k in scored):
        return ObjectiveStatus(Status.ACHIEVED, 0.0, len(scored))
    if mode is RollupMode.WORST_OF:
        worst = max(SEVERITY[k.status] for k in scored)
        return ObjectiveStatus(_BY_SEVERITY[worst], float(worst), len(scored))
    total = sum(k.weight for k in scored)
    score = sum(k.weight * SEVERITY[k.status] for k in scored) / total
    # Half-way between two severities rounds to the worse one: a tie is a warning.
    status = _BY_SEVERITY[0 if score < 0.5 else 1 if score < 1.5 else 2]
    return ObjectiveStatus(status, score, len(scored))


OBJECTIVE_COLUMNS = [
    "objective_id",
    "objective_title",
    "objective_priority",
    "grain",
    "period_label",
    "status",
    "severity_score",
    "kpis_scored",
    "kpi_statuses",
    "rollup",
]


def objective_statuses(scores: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """One row per objective and grain, from each KPI's latest closed whole-site period."""
    weights = {kpi.id: kpi.weight for _, kpi in plan.iter_kpis()}
    mode = plan.scoring.rollup
    latest = _latest_closed(scores[scores["segment_type"] == "all"], ["kpi_id", "grain"])
    rows = []
    for objective in plan.objectives:
        mine = latest[latest["kpi_id"].isin([k.id for k in objective.kpis])]
        for grain, group in mine.groupby("grain", sort=True):
            statuses = [
                KpiStatus(kpi_id, Status(status), weights[kpi_id])
                for kpi_id, status in zip(group["kpi_id"], group["status"], strict=True)
            ]
            result = objective_status(statuses, mode)
            rows.append(
                (
                    objective.id,
                    objective.title,
                    objective.priority,
                    grain,
                    ", ".join(sorted(set(group["period_label"]))),
                    result.status.value,
                    result.score,
                    result.kpis_scored,
                    ", ".join(f"{k.kpi_id}={k.status.value}" for k in statuses),
                    mode.value,
                )
            )
    return pd.DataFrame(rows, columns=OBJECTIVE_COLUMNS)


TACTIC_COLUMNS = [
    "objective_id",
    "kpi_id",
    "grain",
    "period_label",
    "tactic",
    "value",
    "expected",
    "gap",
    "denominator",
    "status",
    "rank",
]


def rank_tactics(
    scores: pd.DataFrame, directions: Mapping[str, str], objectives: Mapping[str, str]
) -> pd.DataFrame:
    """Per KPI and grain, its tactics in the latest closed period, worst first.

    `gap` is the value minus the expected value, signed so that negative is behind (for a
    decrease KPI, above the path is behind). Rank 1 drags the KPI down the most; tactics
    without a value (no traffic, too few sessions) rank last.
    """
    tactics = scores[scores["segment_type"] == "tactic"]
    latest = _latest_closed(tactics, ["kpi_id", "grain", "segment"])
    if latest.empty:
        return pd.DataFrame(columns=TACTIC_COLUMNS)
    # Only the KPI's latest closed period: a tactic with no traffic lately is not "latest".
    newest = latest.groupby(["kpi_id", "grain"])["period_start"].transform("max")
    latest = latest[latest["period_start"] == newest].copy()
    sign = latest["kpi_id"].map(lambda k: -1.0 if directions.get(k) == "decrease" else 1.0)
    latest["gap"] = (latest["value"] - latest["expected"]) * sign
    latest.loc[latest["status"] == Status.INSUFFICIENT_DATA.value, "gap"] = float("nan")
    latest["objective_id"] = latest["kpi_id"].map(objectives)
    latest["tactic"] = latest["segment"]
    latest = latest.sort_values(
        ["kpi_id", "grain", "gap", "tactic"], na_position="last", kind="stable"
    )
    latest["rank"] = latest.groupby(["kpi_id", "grain"]).cumcount() + 1
    return latest[TACTIC_COLUMNS].reset_index(drop=True)


def _latest_closed(scores: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    closed = scores[~scores["is_partial"].astype(bool)]
    return closed.sort_values("period_start", kind="stable").groupby(keys).tail(1)


OBJECTIVE_STATUS = TableSpec(
    "marts",
    "objective_status",
    (
        ("objective_id", "text"),
        ("objective_title", "text"),
        ("objective_priority", "integer"),
        ("grain", "text"),
        ("period_label", "text"),
        ("status", "text"),
        ("severity_score", "double"),
        ("kpis_scored", "bigint"),
        ("kpi_statuses", "text"),
        ("rollup", "text"),
    ),
    grain="one row per objective and grain (each KPI's latest closed period)",
    keys=("objective_id", "grain"),
)

TACTIC_RANKING = TableSpec(
    "marts",
    "tactic_ranking",
    (
        ("objective_id", "text"),
        ("kpi_id", "text"),
        ("grain", "text"),
        ("period_label", "text"),
        ("tactic", "text"),
        ("value", "double"),
        ("expected", "double"),
        ("gap", "double"),
        ("denominator", "double"),
        ("status", "text"),
        ("rank", "bigint"),
    ),
    grain="one row per kpi, grain and tactic in the KPI's latest closed period",
    keys=("kpi_id", "grain", "tactic"),
)
