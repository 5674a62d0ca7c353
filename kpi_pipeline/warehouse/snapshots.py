"""`marts.kpi_snapshots` stored as changes: versions of score rows, runs, and a view.

A run records itself in `kpi_snapshot_runs` (numbered `run_seq`), closes the versions of
rows it no longer reports as they were (`valid_to_run = run_seq`) and opens a version for
each new or changed row (`valid_from_run = run_seq`): a run whose scores did not change
stores no version at all. The view `kpi_snapshots` answers "what did run R report" exactly
as the former append-only table did, with the same columns.

A warehouse whose `kpi_snapshots` is still the append-only table is converted in place, in
one transaction, and only once every run's answer from the versions has been compared with
the table, row for row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpi_pipeline.metrics.score_tables import (
    KPI_SCORE_VERSIONS,
    KPI_SCORES,
    KPI_SNAPSHOT_RUNS,
    KPI_SNAPSHOTS,
)
from kpi_pipeline.metrics.snapshots import (
    SCORE_COLUMNS,
    SCORE_KEYS,
    VALID_FROM,
    VALID_TO,
    score_changes,
    versions_from_history,
)
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError

# Version ids closed per UPDATE statement (bind parameters stay well under engines' limits).
_CLOSE_CHUNK = 5_000


@dataclass(frozen=True)
class SnapshotWritten:
    run_seq: int
    reported: int  # score rows the run reports (what the append-only table would have added)
    opened: int  # versions stored: rows new or changed since the previous run
    closed: int  # versions no longer reported from this run on
    value_sum: float  # sum of the reported rows' value + numerator (the ledger's total)


def prepare_snapshots(wh: Warehouse) -> None:
    """Create the version and run tables and the view; convert an append-only table."""
    for spec in (KPI_SNAPSHOT_RUNS, KPI_SCORE_VERSIONS):
        wh.ensure_table(spec)
    schema = wh.schema_name(KPI_SNAPSHOTS.schema)
    with wh.engine.connect() as conn:
        columns = wh.column_names(conn, schema, KPI_SNAPSHOTS.name)
        kind = wh.relation_kind(conn, schema, KPI_SNAPSHOTS.name)
    if kind == "view" and columns == KPI_SNAPSHOTS.column_names:
        return  # the usual case: one look, no lock
    with wh.transaction() as conn:
        wh.serialize_writes(conn, KPI_SCORE_VERSIONS)
        kind = wh.relation_kind(conn, schema, KPI_SNAPSHOTS.name)
        if kind == "table":
            _convert_append_only(wh, conn)
        elif kind == "view":
            conn.exec_driver_sql(f"drop view {wh.relation(KPI_SNAPSHOTS)}")  # columns changed
        _create_view(wh, conn)


def write_snapshot(
    wh: Warehouse,
    conn: Connection,
    run_id: str,
    computed_at: dt.datetime,
    plan_hash: str,
) -> SnapshotWritten:
    """Record that run `run_id` reported what `kpi_scores` holds, storing only what changed.

    Run inside `wh.transaction()` after `prepare_snapshots`. A retried step of the same run
    (the latest) replaces its own changes; re-recording an earlier run is refused, since
    later runs' versions build on it. Rows identical to their open version are set aside
    in SQL, so only the changed ones are read: a day's cost follows its changes, not the
    history.
    """
    wh.serialize_writes(conn, KPI_SCORE_VERSIONS)
    runs, versions = wh.table(KPI_SNAPSHOT_RUNS), wh.table(KPI_SCORE_VERSIONS)
    latest = conn.execute(
        sa.select(runs.c.run_seq, runs.c.run_id).order_by(runs.c.run_seq.desc()).limit(1)
    ).first()
    if latest is not None and latest.run_id == run_id:
        run_seq = int(latest.run_seq)
        _undo_run(conn, runs, versions, run_seq)
    else:
        known = conn.execute(sa.select(runs.c.run_seq).where(runs.c.run_id == run_id)).first()
        if known is not None:
            raise WarehouseError(
                f"{wh.relation(KPI_SNAPSHOTS)}: run {run_id} recorded its snapshot before "
                "later runs did; its snapshot cannot be written again without rewriting theirs"
            )
        run_seq = (int(latest.run_seq) if latest is not None else 0) + 1

    previous, scores = _differing_rows(wh, conn)
    changes = score_changes(previous, scores)
    closing = [int(v) for v in changes.closed["version_id"]]
    for start in range(0, len(closing), _CLOSE_CHUNK):
        conn.execute(
            sa.update(versions)
            .where(versions.c.version_id.in_(closing[start : start + _CLOSE_CHUNK]))
            .values({VALID_TO: run_seq})
        )
    first_id = conn.execute(sa.select(sa.func.coalesce(sa.func.max(versions.c.version_id), 0)))
    next_id = int(first_id.scalar_one()) + 1
    opened = changes.opened.assign(
        version_id=range(next_id, next_id + len(changes.opened)),
        **{VALID_FROM: run_seq, VALID_TO: None},
    )
    wh.bulk_insert(conn, KPI_SCORE_VERSIONS, opened)
    reported, value_sum = conn.exec_driver_sql(
        "select count(*), sum(coalesce(value, 0) + coalesce(numerator, 0)) "
        f"from {wh.relation(KPI_SCORES)}"
    ).one()
    written = SnapshotWritten(
        run_seq, int(reported), len(changes.opened), len(closing), float(value_sum or 0)
    )
    conn.execute(
        runs.insert().values(
            run_seq=run_seq,
            run_id=run_id,
            computed_at=computed_at,
            plan_hash=plan_hash,
            rows_reported=written.reported,
            rows_opened=written.opened,
            rows_closed=written.closed,
        )
    )
    return written


def _differing_rows(wh: Warehouse, conn: Connection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(open versions, current scores), each without the rows the other holds identically
    (EXCEPT compares nulls as equal, as `score_changes` does)."""
    columns = ", ".join(_quote(wh, c) for c in SCORE_COLUMNS)
    keys = " and ".join(f"o.{_quote(wh, k)} = g.{_quote(wh, k)}" for k in SCORE_KEYS)
    open_versions = (
        f"select version_id, {columns} from {wh.relation(KPI_SCORE_VERSIONS)} "
        f"where {VALID_TO} is null"
    )
    scores = wh.relation(KPI_SCORES)
    previous = wh.read_frame(
        f"with open_versions as ({open_versions}), gone as (select {columns} from "
        f"open_versions except select {columns} from {scores}) "
        f"select o.* from open_versions as o inner join gone as g on {keys}",
        conn=conn,
    )
    current = wh.read_frame(
        f"select {columns} from {scores} except select {columns} from ({open_versions}) as o",
        conn=conn,
    )
    return previous, current


def view_sql(wh: Warehouse) -> str:
    """The select behind `kpi_snapshots`: each run joined with the versions it reported."""
    columns = ", ".join(f"v.{_quote(wh, c)}" for c in SCORE_COLUMNS)
    return (
        f"select r.run_id, r.computed_at, r.plan_hash, {columns} "
        f"from {wh.relation(KPI_SNAPSHOT_RUNS)} as r "
        f"join {wh.relation(KPI_SCORE_VERSIONS)} as v on v.{VALID_FROM} <= r.run_seq "
        f"and (v.{VALID_TO} is null or r.run_seq < v.{VALID_TO})"
    )


def _undo_run(conn: Connection, runs: sa.Table, versions: sa.Table, run_seq: int) -> None:
    conn.execute(sa.delete(versions).where(versions.c[VALID_FROM] == run_seq))
    conn.execute(
        sa.update(versions).where(versions.c[VALID_TO] == run_seq).values({VALID_TO: None})
    )
    conn.execute(sa.delete(runs).where(runs.c.run_seq == run_seq))


def _create_view(wh: Warehouse, conn: Connection) -> None:
    view = wh.relation(KPI_SNAPSHOTS)
    conn.exec_driver_sql(f"create view {view} as {view_sql(wh)}")
    if not wh.is_postgres:
        return  # DuckDB refuses writes to a view by itself
    # Without it PostgreSQL would refuse a write with "cannot delete from view" before it
    # checks privileges; with it, a reader gets "permission denied" and the owner this line.
    function = wh.relation(KPI_SNAPSHOTS.schema, "kpi_snapshots_is_history")
    conn.exec_driver_sql(
        f"create or replace function {function}() returns trigger language plpgsql as $body$ "
        "begin raise exception 'kpi_snapshots is the history of what each run reported: it "
        "cannot be changed (runs write kpi_score_versions)'; end $body$"
    )
    conn.exec_driver_sql(
        f"create trigger kpi_snapshots_is_history instead of insert or update or delete "
        f"on {view} for each row execute function {function}()"
    )


def _convert_append_only(wh: Warehouse, conn: Connection) -> None:
    """Replace the append-only `kpi_snapshots` table by versions, runs and the view."""
    table = wh.relation(KPI_SNAPSHOTS)
    if conn.execute(sa.select(sa.func.count()).select_from(wh.table(KPI_SNAPSHOT_RUNS))).scalar():
        raise WarehouseError(
            f"{table} is an append-only table but {wh.relation(KPI_SNAPSHOT_RUNS)} already "
            "holds runs: move one of them aside by hand before the next run"
        )
    order = pd.read_sql_query(
        sa.text(
            f"select run_id, min(computed_at) as computed_at, min(plan_hash) as plan_hash, "
            f"count(*) as rows_reported from {table} group by run_id "
            "order by min(computed_at), run_id"
        ),
        conn,
    )
    order["run_seq"] = range(1, len(order) + 1)

    def reports():
        for run_seq, run_id in order[["run_seq", "run_id"]].itertuples(index=False):
            frame = pd.read_sql_query(
                sa.text(f"select * from {table} where run_id = :run_id"),
                conn,
                params={"run_id": run_id},
            )
            yield int(run_seq), frame

    versions = versions_from_history(reports())
    versions["version_id"] = range(1, len(versions) + 1)
    opened = versions.groupby(VALID_FROM).size()
    closed = versions.groupby(VALID_TO).size()
    order["rows_opened"] = order["run_seq"].map(opened).fillna(0).astype(int)
    order["rows_closed"] = order["run_seq"].map(closed).fillna(0).astype(int)
    wh.bulk_insert(conn, KPI_SCORE_VERSIONS, versions)
    wh.bulk_insert(conn, KPI_SNAPSHOT_RUNS, order)

    # Every run's answer from the versions must be the table's, row for row, before the
    # table goes: any difference rolls the whole conversion back.
    columns = ", ".join(_quote(wh, c) for c in KPI_SNAPSHOTS.column_names)
    differ = conn.exec_driver_sql(
        f"select count(*) from ((select {columns} from {table} except all "
        f"select {columns} from ({view_sql(wh)}) as v) union all (select {columns} from "
        f"({view_sql(wh)}) as v except all select {columns} from {table})) as d"
    ).scalar_one()
    if differ:
        raise WarehouseError(
            f"{table}: converting the append-only snapshots to versions would change "
            f"{differ} row(s) of some run's answer, so the table was left as it was"
        )
    conn.exec_driver_sql(f"drop table {table}")


def _quote(wh: Warehouse, name: str) -> str:
    return wh.engine.dialect.identifier_preparer.quote(name)
