"""The scored marts: `kpi_scores` (current) and the history of what every run reported.

The history is stored as changes (SCD-2): `kpi_score_versions` holds a row each time a score
row first appears or changes, reported by runs `valid_from_run` <= R < `valid_to_run` (null:
still reported); `kpi_snapshot_runs` numbers the runs. The view `kpi_snapshots` joins them
back into one row per run and score row, exactly what an append-only table would hold.
`KPI_SCORES` itself is declared in `score_columns` (scoring reads its columns too).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.score_columns import KPI_SCORES
from kpi_pipeline.metrics.scoring import Goal, hold_windows, score_frame, with_hold_reasons
from kpi_pipeline.plan.models import Plan

# A view (see kpi_pipeline/warehouse/snapshots.py): what every run reported.
KPI_SNAPSHOTS = TableSpec(
    "marts",
    "kpi_snapshots",
    (("run_id", "text"), ("computed_at", "timestamp"), ("plan_hash", "text"), *KPI_SCORES.columns),
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
        *KPI_SCORES.columns,
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
        columns=KPI_SCORES.column_names[:7],
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
    ordered = scored[KPI_SCORES.column_names].sort_values(list(KPI_SCORES.keys), kind="stable")
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
