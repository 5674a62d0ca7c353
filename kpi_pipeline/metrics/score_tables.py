"""The scored marts: `kpi_scores` (current) and the history of what every run reported.

The history is stored as changes (SCD-2): `kpi_score_versions` holds a row each time a score
row first appears or changes, reported by runs `valid_from_run` <= R < `valid_to_run` (null:
still reported); `kpi_snapshot_runs` numbers the runs. The view `kpi_snapshots` joins them
back into one row per run and score row, exactly what an append-only table would hold.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.metrics.scoring import Goal, hold_windows, score_frame, with_hold_reasons
from kpi_pipeline.plan.models import Plan

_SCORE_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("kpi_id", "text"),
    ("kpi_label", "text"),
    ("kind", "text"),
    ("direction", "text"),
    ("objective_id", "text"),
    ("objective_title", "text"),
    ("objective_priority", "integer"),
    ("grain", "text"),
    ("period_start", "date"),
    ("period_end", "date"),
    ("period_label", "text"),
    ("segment_type", "text"),
    ("segment", "text"),
    ("numerator", "double"),
    ("denominator", "double"),
    ("value", "double"),
    ("days_with_data", "bigint"),
    ("is_partial", "boolean"),
    ("as_of_date", "date"),
    ("quality_flags", "text"),
    ("expected", "double"),
    ("target", "double"),
    ("tolerance_band", "double"),
    ("status", "text"),
    ("ci_low", "double"),
    ("ci_high", "double"),
    ("forecast_at_deadline", "double"),
    ("projected_status", "text"),
    ("forecast_low", "double"),
    ("forecast_high", "double"),
    ("hold_reason", "text"),
    # The days the period was judged on: the KPI's sources covered them (see kpi_values).
    ("covered_from", "date"),
    ("covered_to", "date"),
    ("days_covered", "bigint"),
)

KPI_SCORES = TableSpec(
    "marts",
    "kpi_scores",
    _SCORE_COLUMNS,
    grain="one row per kpi, grain, period_start, segment_type and segment",
    keys=("kpi_id", "grain", "period_start", "segment_type", "segment"),
)

# A view (see kpi_pipeline/warehouse/snapshots.py): what every run reported.
KPI_SNAPSHOTS = TableSpec(
    "marts",
    "kpi_snapshots",
    (("run_id", "text"), ("computed_at", "timestamp"), ("plan_hash", "text"), *_SCORE_COLUMNS),
    grain="one row per run and kpi_scores row it reported (a view over kpi_score_versions)",
    keys=("run_id", "kpi_id", "grain", "period_start", "segment_type", "segment"),
)

KPI_SNAPSHOT_RUNS = TableSpec(
    "marts",
    "kpi_snapshot_runs",
    (
        ("run_seq", "bigint"),
        ("run_id", "text"),
        ("computed_at", "timestamp"),
        ("plan_hash", "text"),
        ("rows_reported", "bigint"),
        ("rows_opened", "bigint"),
        ("rows_closed", "bigint"),
    ),
    grain="one row per run that snapshotted the scores, numbered in order (run_seq)",
    keys=("run_seq",),
)

KPI_SCORE_VERSIONS = TableSpec(
    "marts",
    "kpi_score_versions",
    (
        ("version_id", "bigint"),
        ("valid_from_run", "bigint"),
        ("valid_to_run", "bigint"),
        *_SCORE_COLUMNS,
    ),
    grain="one row per kpi_scores row and change: reported by runs valid_from_run <= run_seq < "
    "valid_to_run (null: still reported)",
    keys=("kpi_id", "grain", "period_start", "segment_type", "segment", "valid_from_run"),
    indexes=(("valid_from_run",), ("valid_to_run",)),
)


def scores_for_plan(
    values: pd.DataFrame,
    goals: Mapping[str, Goal],
    plan: Plan,
    latest_as_of: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """`kpi_values` rows scored and labelled with their KPI and objective, in a stable order.

    `latest_as_of` ({kpi_id: last covered day}) is needed when `values` holds only part of
    each KPI's history (see `with_hold_reasons`)."""
    labels = pd.DataFrame(
        [
            (k.id, k.label, k.kind.value, k.direction.value, o.id, o.title, o.priority)
            for o, k in plan.iter_kpis()
        ],
        columns=_column_names()[:7],
    )
    values = values.astype({"is_partial": bool})
    for column in ("period_start", "period_end", "as_of_date", "covered_from", "covered_to"):
        if column in values:
            values[column] = pd.to_datetime(values[column]).astype("datetime64[s]")
    if "quality_flags" in values:
        values["quality_flags"] = values["quality_flags"].map(flag_set)
    scored = with_hold_reasons(
        score_frame(values, goals, plan.scoring.forecast_periods), hold_windows(plan), latest_as_of
    ).merge(labels, on="kpi_id", how="inner", validate="m:1")
    ordered = scored[_column_names()].sort_values(list(KPI_SCORES.keys), kind="stable")
    return ordered.reset_index(drop=True)


def flag_set(flags: object) -> str | None:
    """Quality flags as a set: sorted, each once, comma-separated (None when there are none)."""
    if flags is None or (isinstance(flags, float) and pd.isna(flags)):
        return None
    unique = sorted({part.strip() for part in str(flags).split(",") if part.strip()})
    return ",".join(unique) or None


def latest_closed_statuses(scores: pd.DataFrame) -> dict[str, dict[str, str]]:
    """{kpi_id: {grain: status}} for the latest complete period of each KPI as a whole."""
    whole = scores[(scores["segment_type"] == "all") & ~scores["is_partial"].astype(bool)]
    latest = whole.sort_values("period_start").groupby(["kpi_id", "grain"]).tail(1)
    result: dict[str, dict[str, str]] = {}
    for kpi_id, grain, status in latest[["kpi_id", "grain", "status"]].itertuples(index=False):
        result.setdefault(kpi_id, {})[grain] = status
    return result


def _column_names() -> list[str]:
    return [name for name, _ in _SCORE_COLUMNS]
