"""Re-score only the `kpi_scores` rows a run's changed days can change.

A row's score reads its own `kpi_values` row, but three columns read more:
- the forecast reads the last `forecast_periods` closed, scored periods of its series
  before it: every later row of a series whose period changed is re-scored, seeded with
  the stored scores of the closed periods just before (unchanged, so identical);
- `hold_reason` reads the KPI's latest covered day: when it moves, rows ending within the
  longest hold window of the older latest day are re-scored too;
- labels read the plan, whose change makes the run a full build anyway.
So per KPI and grain the run re-scores every period from a cutoff on (the earliest affected
period, or the earliest period a moved latest day can re-hold) and leaves earlier rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
from sqlalchemy.engine import Connection

from kpi_pipeline.metrics.score_tables import KPI_SCORES, scores_for_plan
from kpi_pipeline.metrics.scoring import Goal, hold_windows
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.warehouse import incremental
from kpi_pipeline.warehouse.engine import Warehouse

_SERIES = ["kpi_id", "grain", "segment_type", "segment"]


def rescore_changed(
    wh: Warehouse, goals: Mapping[str, Goal], plan: Plan, joining: Connection | None = None
) -> tuple[pd.DataFrame, int]:
    """Replace the re-scored rows of `kpi_scores`; returns (the new rows, rows deleted).

    `joining`: the publishing transaction (it reads the `kpi_values` it just rebuilt)."""
    with wh.transaction(joining) as conn:
        return _rescore(wh, conn, goals, plan)


def _rescore(
    wh: Warehouse, conn: Connection, goals: Mapping[str, Goal], plan: Plan
) -> tuple[pd.DataFrame, int]:
    values_relation = wh.relation("marts", "kpi_values")
    scores_relation = wh.relation(KPI_SCORES)
    latest_new = _latest(wh, conn, values_relation)
    latest_old = _latest(wh, conn, scores_relation)
    affected = wh.read_frame(
        "select affected_grain as grain, min(affected_period_start) as period_start "
        f"from {wh.relation(incremental.STATE_SCHEMA, incremental.RUN_PERIODS)} group by 1",
        conn=conn,
    )
    affected_start = {g: pd.Timestamp(d).date() for g, d in affected.itertuples(index=False)}
    window = max(hold_windows(plan).values(), default=0)
    cutoffs: dict[tuple[str, str], dt.date] = {}
    kpi_grains = wh.read_frame(
        f"select kpi_id, grain from {wh.relation('plan', 'kpi_grains')}", conn=conn
    )
    for kpi_id, grain in kpi_grains.itertuples(index=False):
        if grain in affected_start:
            cutoffs[(kpi_id, grain)] = affected_start[grain]
    moved = {
        kpi_id: min(day, latest_old[kpi_id]) if kpi_id in latest_old else day
        for kpi_id, day in latest_new.items()
        if latest_old.get(kpi_id) != day
    } | {kpi_id: day for kpi_id, day in latest_old.items() if kpi_id not in latest_new}
    for kpi_id, day in moved.items():
        # Rows ending after `day - window` may change their hold (one day of margin).
        since = day - dt.timedelta(days=window + 1)
        first = wh.read_frame(
            f"select grain, min(period_start) as period_start from {values_relation} "
            "where kpi_id = :kpi_id and period_end >= :since group by 1",
            {"kpi_id": kpi_id, "since": since},
            conn=conn,
        )
        for grain, start in first.itertuples(index=False):
            start = pd.Timestamp(start).date()
            key = (kpi_id, grain)
            cutoffs[key] = min(cutoffs.get(key, start), start)
    if not cutoffs:
        return wh.read_frame(f"select * from {scores_relation} where false", conn=conn), 0
    cut = pd.DataFrame(
        [(k, g, d) for (k, g), d in cutoffs.items()], columns=["kpi_id", "grain", "cutoff"]
    )
    wh.serialize_writes(conn, KPI_SCORES)
    conn.exec_driver_sql("drop table if exists score_cutoffs")
    conn.exec_driver_sql(
        "create temporary table score_cutoffs (kpi_id varchar, grain varchar, cutoff date)"
    )
    for row in cut.itertuples(index=False):
        conn.exec_driver_sql(
            "insert into score_cutoffs values (%s, %s, %s)"
            if wh.is_postgres
            else "insert into score_cutoffs values (?, ?, ?)",
            (row.kpi_id, row.grain, row.cutoff),
        )
    join = "inner join score_cutoffs as c on c.kpi_id = t.kpi_id and c.grain = t.grain"
    recent = pd.read_sql_query(
        f"select t.* from {values_relation} as t {join} where t.period_start >= c.cutoff",
        conn,
    )
    # The closed, scored periods a forecast after the cutoff still reads.
    limit = int(plan.scoring.forecast_periods)
    value_columns = ", ".join(f"s.{c}" for c in recent.columns)
    seeds = pd.read_sql_query(
        f"select {value_columns} from (select t.*, row_number() over (partition by "
        "t.kpi_id, t.grain, t.segment_type, t.segment order by t.period_start desc) as n "
        f"from {scores_relation} as t {join} where t.period_start < c.cutoff "
        "and not t.is_partial and t.status <> 'insufficient_data') as s "
        f"where s.n <= {limit}",
        conn,
    )
    frame = pd.concat([seeds.astype(recent.dtypes.to_dict()), recent], ignore_index=True)
    scored = scores_for_plan(frame, goals, plan, latest_new)
    starts = scored[["kpi_id", "grain"]].apply(tuple, axis=1).map(cutoffs)
    scored = scored[pd.to_datetime(scored["period_start"]) >= pd.to_datetime(starts)]
    deleted = conn.exec_driver_sql(
        f"delete from {scores_relation} as t where exists (select 1 from score_cutoffs "
        "as c where c.kpi_id = t.kpi_id and c.grain = t.grain and t.period_start >= c.cutoff)"
        if not wh.is_postgres
        else f"delete from {scores_relation} as t using score_cutoffs as c where "
        "c.kpi_id = t.kpi_id and c.grain = t.grain and t.period_start >= c.cutoff"
    ).rowcount
    wh.bulk_insert(conn, KPI_SCORES, scored.reset_index(drop=True))
    conn.exec_driver_sql("drop table score_cutoffs")
    return scored.reset_index(drop=True), int(deleted or 0)


def _latest(wh: Warehouse, conn: Connection, relation: str) -> dict[str, dt.date]:
    frame = wh.read_frame(
        f"select kpi_id, max(as_of_date) as day from {relation} group by 1", conn=conn
    )
    return {k: pd.Timestamp(d).date() for k, d in frame.itertuples(index=False) if pd.notna(d)}
