"""What a run must recompute: the days whose inputs changed, and the periods holding them.

A run's *scope* is decided once, by the first incremental model it builds, and stored in
`<plan>_intermediate` so every later step of the same run reads the same answer:

- `incremental_run_days` — days whose inputs changed since the last completed build: rows of
  `raw.source_days` (a loader rewrites a day's coverage, with its `read_at`, whenever it
  replaces the day) or `raw.check_flags` that differ from the copy taken at that build, plus
  the run's own partition days. Comparing with the copy, not trusting the run's tags, also
  catches GA4 roll-backs, month-dated CSV files and email windows that re-read other days,
  and days a failed run loaded but never built.
- `incremental_run_periods` — every (grain, period_start) of the plan calendar (ISO weeks,
  months, fiscal quarters...) holding one of those days.
- `incremental_run_period_days` — every day of those periods (what a period's figure reads).

The build is *full* (every model rebuilt from all history) when asked (`--full-refresh`),
when nothing was built yet, or when the plan or the SQL models changed since the last build
(any period may then change). `mark_built` records the copy once the scored marts are
written; a run failing before that leaves the next run to recompute its days as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpi_pipeline.warehouse.engine import Warehouse

FULL_REFRESH_TAG = "kpi/full_refresh"

STATE_SCHEMA = "intermediate"
RUN_DAYS = "incremental_run_days"
RUN_PERIODS = "incremental_run_periods"
RUN_PERIOD_DAYS = "incremental_run_period_days"
_RUN = "incremental_run"  # one row: the run the scope tables describe, and its mode
_BUILT = "incremental_built"  # one row: plan and models hashes of the last completed build
_BUILT_SOURCE_DAYS = "incremental_built_source_days"
_BUILT_CHECK_FLAGS = "incremental_built_check_flags"
_PENDING_SOURCE_DAYS = "incremental_pending_source_days"
_PENDING_CHECK_FLAGS = "incremental_pending_check_flags"

# Raw tables whose rows say which days changed (a loader rewrites them with each day).
_CHANGE_TABLES = (
    ("source_days", _BUILT_SOURCE_DAYS, _PENDING_SOURCE_DAYS),
    ("check_flags", _BUILT_CHECK_FLAGS, _PENDING_CHECK_FLAGS),
)


@dataclass(frozen=True)
class BuildScope:
    """What the run rebuilds: everything (`full`) or the periods of `changed_days` days."""

    run_id: str
    full: bool
    reason: str
    changed_days: int = 0


def models_hash(templates: Iterable[str]) -> str:
    """A fingerprint of the SQL models: a change to any of them rebuilds everything."""
    digest = hashlib.sha256()
    for template in sorted(templates):
        digest.update(template.encode())
    return digest.hexdigest()[:16]


def run_scope(
    wh: Warehouse,
    run_id: str,
    *,
    plan_hash: str,
    sql_hash: str,
    run_days: tuple[dt.date, dt.date] | None,
    full_refresh: bool,
) -> BuildScope:
    """The run's scope, computed by its first caller and read back by the others."""
    wh.ensure_schema(STATE_SCHEMA)
    with wh.transaction() as conn:
        wh.serialize_writes(conn, f"{wh.schema_name(STATE_SCHEMA)}.{_RUN}")
        stored = _stored_scope(wh, conn, run_id)
        if stored is not None:
            return stored
        for raw_table, _, pending in _CHANGE_TABLES:
            _copy(wh, conn, raw_table, pending)
        reason = _full_reason(wh, conn, plan_hash, sql_hash, full_refresh)
        changed = 0
        if reason is None:
            changed = _write_changed_days(wh, conn, run_days)
        _replace(
            wh,
            conn,
            _RUN,
            "select cast(:run_id as varchar) as run_id, cast(:full as boolean) as is_full, "
            "cast(:reason as varchar) as reason, cast(:plan_hash as varchar) as plan_hash, "
            "cast(:sql_hash as varchar) as sql_hash, cast(:changed as bigint) as changed_days",
            {
                "run_id": run_id,
                "full": reason is not None,
                "reason": reason or "incremental",
                "plan_hash": plan_hash,
                "sql_hash": sql_hash,
                "changed": changed,
            },
        )
        return BuildScope(run_id, reason is not None, reason or "incremental", changed)


def current_scope(wh: Warehouse, run_id: str) -> BuildScope | None:
    """The scope `run_id` stored (None: it built no incremental model)."""
    if not wh.table_exists(STATE_SCHEMA, _RUN):
        return None
    with wh.engine.connect() as conn:
        return _stored_scope(wh, conn, run_id)


def mark_built(wh: Warehouse, run_id: str, conn: Connection | None = None) -> None:
    """The run's scope is built through the scored marts: later runs compare with its copy.

    Pass the connection publishing the marts: the mark commits with them or not at all."""
    with wh.transaction(conn) as conn:
        scope = _stored_scope(wh, conn, run_id)
        if scope is None:
            return
        row = conn.exec_driver_sql(
            f"select plan_hash, sql_hash from {wh.relation(STATE_SCHEMA, _RUN)}"
        ).one()
        for _, built, pending in _CHANGE_TABLES:
            _replace(wh, conn, built, f"select * from {wh.relation(STATE_SCHEMA, pending)}")
        _replace(
            wh,
            conn,
            _BUILT,
            "select cast(:plan_hash as varchar) as plan_hash, "
            "cast(:sql_hash as varchar) as sql_hash, cast(:run_id as varchar) as run_id",
            {"plan_hash": row[0], "sql_hash": row[1], "run_id": run_id},
        )


def days_condition(wh: Warehouse, column: str) -> str:
    """SQL: `column` is one of the run's changed days."""
    return f"{column} in (select date from {wh.relation(STATE_SCHEMA, RUN_DAYS)})"


def period_days_condition(wh: Warehouse, column: str) -> str:
    """SQL: `column` is a day of one of the run's affected periods."""
    return f"{column} in (select date from {wh.relation(STATE_SCHEMA, RUN_PERIOD_DAYS)})"


def periods_condition(wh: Warehouse, grain: str, period_start: str) -> str:
    """SQL: (`grain`, `period_start`) is one of the run's affected periods."""
    periods = wh.relation(STATE_SCHEMA, RUN_PERIODS)
    # Columns named apart from the caller's, so unqualified names cannot resolve inside.
    return (
        f"exists (select 1 from {periods} where affected_grain = {grain} "
        f"and affected_period_start = {period_start})"
    )


# -- helpers ------------------------------------------------------------------------------


def _stored_scope(wh: Warehouse, conn: Connection, run_id: str) -> BuildScope | None:
    schema = wh.schema_name(STATE_SCHEMA)
    if wh.relation_kind(conn, schema, _RUN) is None:
        return None
    row = conn.execute(
        sa.text(
            f"select is_full, reason, changed_days from {wh.relation(STATE_SCHEMA, _RUN)} "
            "where run_id = :run_id"
        ),
        {"run_id": run_id},
    ).first()
    if row is None:
        return None
    return BuildScope(run_id, bool(row[0]), str(row[1]), int(row[2]))


def _full_reason(
    wh: Warehouse, conn: Connection, plan_hash: str, sql_hash: str, full_refresh: bool
) -> str | None:
    if full_refresh:
        return "full refresh asked"
    schema = wh.schema_name(STATE_SCHEMA)
    if wh.relation_kind(conn, schema, _BUILT) is None:
        return "first build"
    built = conn.exec_driver_sql(
        f"select plan_hash, sql_hash from {wh.relation(STATE_SCHEMA, _BUILT)}"
    ).first()
    if built is None:
        return "first build"
    if built[0] != plan_hash:
        return "the plan changed"
    if built[1] != sql_hash:
        return "the SQL models changed"
    for _, built_copy, pending in _CHANGE_TABLES:
        # A raw table that gained columns (or appeared) cannot be compared row for row.
        if wh.column_names(conn, schema, built_copy) != wh.column_names(conn, schema, pending):
            return "the raw tables changed shape"
    return None


def _write_changed_days(
    wh: Warehouse, conn: Connection, run_days: tuple[dt.date, dt.date] | None
) -> int:
    """Fill the three scope tables; returns the number of changed days."""
    parts = []
    for _, built, pending in _CHANGE_TABLES:
        now, then = wh.relation(STATE_SCHEMA, pending), wh.relation(STATE_SCHEMA, built)
        parts.append(f"(select * from {now} except select * from {then})")
        parts.append(f"(select * from {then} except select * from {now})")
    changed = " union ".join(f"select date from {part} as changed" for part in parts)
    params: dict[str, object] = {}
    if run_days is not None:
        # The run's own days too: a day read again with identical rows is still re-checked.
        changed += (
            f" union select date from {wh.relation('plan', 'calendar')} "
            "where date between :first and :last"
        )
        params = {"first": run_days[0], "last": run_days[1]}
    _replace(
        wh,
        conn,
        RUN_DAYS,
        f"select distinct cast(date as date) as date from ({changed}) as d",
        params,
    )
    calendar = wh.relation("plan", "calendar")
    days = wh.relation(STATE_SCHEMA, RUN_DAYS)
    _replace(
        wh,
        conn,
        RUN_PERIODS,
        "select distinct grain as affected_grain, period_start as affected_period_start "
        f"from {calendar} where date in (select date from {days})",
    )
    periods = wh.relation(STATE_SCHEMA, RUN_PERIODS)
    _replace(
        wh,
        conn,
        RUN_PERIOD_DAYS,
        f"select distinct calendar.date from {calendar} as calendar inner join {periods} as p "
        "on p.affected_grain = calendar.grain "
        "and p.affected_period_start = calendar.period_start",
    )
    return int(conn.exec_driver_sql(f"select count(*) from {days}").scalar_one())


def _copy(wh: Warehouse, conn: Connection, raw_table: str, target: str) -> None:
    """A copy of `raw.<raw_table>` (empty, with a `date` column, when the table is absent)."""
    if wh.relation_kind(conn, wh.schema_name("raw"), raw_table) is None:
        _replace(wh, conn, target, "select cast(null as date) as date where 1 = 0")
        return
    _replace(wh, conn, target, f"select * from {wh.relation('raw', raw_table)}")


def _replace(
    wh: Warehouse, conn: Connection, name: str, select: str, params: dict | None = None
) -> None:
    relation = wh.relation(STATE_SCHEMA, name)
    conn.exec_driver_sql(f"drop table if exists {relation}")
    conn.execute(sa.text(f"create table {relation} as {select}"), params or {})
    if wh.is_postgres:
        # Statistics now: the planner would otherwise guess thousands of changed days and
        # scan all of history where the models filter on these tables.
        conn.exec_driver_sql(f"analyze {relation}")
