"""Versioned schema migrations for every table the pipeline writes.

Why a small versioned-DDL table and not Alembic: the pipeline's tables are declared as data
(`TableSpec`) and must be created identically on DuckDB and PostgreSQL (and, through their
SQLAlchemy dialects, on BigQuery or Snowflake). Alembic would add an `env.py`, a script
folder and a second description of each table, and its DuckDB support rests on
duckdb-engine's partial `ALTER` implementation. What we need is small: an ordered list of
steps, each applied once, in its own transaction (both engines have transactional DDL),
recorded in `meta.schema_migrations`, with concurrent migrators serialised by an advisory
lock on PostgreSQL. That is this module, about a hundred lines.

Rules for adding a migration: never edit a released one (warehouses already ran it); append
a new `Migration` with the next version; describe tables here with literal column lists,
not by importing today's `TableSpec` (a migration must mean the same thing forever). The
test `tests/warehouse/test_migrations.py` fails if the code declares a column that no
migration creates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpi_pipeline.lib.tables import ColumnType
from kpi_pipeline.warehouse.engine import WarehouseError, sa_table
from kpi_pipeline.warehouse.engine import sa_type as _sa_type

if TYPE_CHECKING:
    from kpi_pipeline.warehouse.engine import Warehouse

VERSION_SCHEMA = "meta"
VERSION_TABLE = "schema_migrations"

Columns = tuple[tuple[str, ColumnType], ...]

_DIMENSIONS: Columns = (
    ("source", "text"),
    ("medium", "text"),
    ("campaign", "text"),
    ("landing_page", "text"),
    ("device", "text"),
)
_ROW_KEY: Columns = (("source_id", "text"), ("date", "date"), *_DIMENSIONS)
_LINEAGE: Columns = (("file", "text"), ("line", "bigint"))
_SCORE: Columns = (
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
    ("expected", "double"),
    ("target", "double"),
    ("tolerance_band", "double"),
    ("status", "text"),
    ("ci_low", "double"),
    ("ci_high", "double"),
    ("forecast_at_deadline", "double"),
    ("projected_status", "text"),
)

# Version 1: the tables as the pipeline first wrote them (before migrations existed).
BASELINE_TABLES: dict[tuple[str, str], Columns] = {
    ("raw", "csv_traffic"): (
        *_ROW_KEY,
        ("sessions", "bigint"),
        ("engaged_sessions", "bigint"),
        ("key_events", "double"),
        *_LINEAGE,
    ),
    ("raw", "csv_events"): (
        *_ROW_KEY,
        ("event_name", "text"),
        ("event_count", "double"),
        *_LINEAGE,
    ),
    ("raw", "quarantine"): (
        ("source_id", "text"),
        ("partition_date", "date"),
        ("file", "text"),
        ("line", "bigint"),
        ("column_name", "text"),
        ("reason", "text"),
        ("raw_text", "text"),
    ),
    ("plan", "kpis"): (
        ("kpi_id", "text"),
        ("objective_id", "text"),
        ("objective_title", "text"),
        ("objective_priority", "integer"),
        ("kpi_label", "text"),
        ("kind", "text"),
        ("direction", "text"),
        ("numerator_measure", "text"),
        ("denominator_measure", "text"),
        ("is_rate", "boolean"),
    ),
    ("plan", "kpi_grains"): (("kpi_id", "text"), ("grain", "text")),
    ("plan", "kpi_segments"): (("kpi_id", "text"), ("segment_type", "text")),
    ("plan", "kpi_tactics"): (("kpi_id", "text"), ("tactic_id", "text")),
    ("plan", "tactic_rules"): (
        ("rule_order", "integer"),
        ("tactic_id", "text"),
        ("channel", "text"),
        ("strategy_id", "text"),
        ("objective_id", "text"),
        ("source_pattern", "text"),
        ("medium_pattern", "text"),
        ("campaign_pattern", "text"),
    ),
    ("plan", "measures"): (("measure_id", "text"), ("event_name", "text")),
    ("plan", "calendar"): (
        ("date", "date"),
        ("grain", "text"),
        ("period_start", "date"),
        ("period_end", "date"),
        ("period_label", "text"),
    ),
    ("marts", "kpi_scores"): _SCORE,
    ("marts", "kpi_snapshots"): (
        ("run_id", "text"),
        ("computed_at", "timestamp"),
        ("plan_hash", "text"),
        *_SCORE,
    ),
}

# Version 2: the filters every run applies, indexed on PostgreSQL (partition deletes by
# source and day, snapshot look-ups by run). DuckDB's zone maps already prune these scans
# and its indexes would slow bulk loads, so there the step only records the version.
PARTITION_INDEXES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ix_csv_traffic_partition": ("raw", "csv_traffic", ("source_id", "date")),
    "ix_csv_events_partition": ("raw", "csv_events", ("source_id", "date")),
    "ix_quarantine_partition": ("raw", "quarantine", ("source_id", "partition_date")),
    "ix_kpi_snapshots_run": ("marts", "kpi_snapshots", ("run_id",)),
}


# Version 3: data-quality flags, forecast bounds and the reason a status is held, on every
# score (current and snapshots). Old snapshots keep their rows, with these columns null.
SCORE_COLUMNS_V3: Columns = (
    ("quality_flags", "text"),
    ("forecast_low", "double"),
    ("forecast_high", "double"),
    ("hold_reason", "text"),
)


# Version 4: the tables of the GA4, email and session-level sources, period-to-date,
# roll-ups and alerts, as they were first released (written literally, as every step is).
SOURCE_AND_ALERT_TABLES_V4: dict[tuple[str, str], Columns] = {
    ("raw", "ga4_traffic"): (
        ("source_id", "text"),
        ("date", "date"),
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("landing_page", "text"),
        ("device", "text"),
        ("sessions", "bigint"),
        ("engaged_sessions", "bigint"),
        ("key_events", "double"),
        ("property_id", "text"),
        ("extracted_at", "timestamp"),
    ),
    ("raw", "ga4_events"): (
        ("source_id", "text"),
        ("date", "date"),
        ("event_name", "text"),
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("device", "text"),
        ("event_count", "double"),
        ("property_id", "text"),
        ("extracted_at", "timestamp"),
    ),
    ("raw", "ga4_extract_log"): (
        ("source_id", "text"),
        ("date", "date"),
        ("report", "text"),
        ("property_id", "text"),
        ("row_count", "bigint"),
        ("pages", "integer"),
        ("restarts", "integer"),
        ("sampled", "boolean"),
        ("sampling_rate", "double"),
        ("subject_to_thresholding", "boolean"),
        ("data_loss_from_other_row", "boolean"),
        ("truncation_reasons", "text"),
        ("empty_reason", "text"),
        ("time_zone", "text"),
        ("currency_code", "text"),
        ("timezone_mismatch", "boolean"),
        ("quality_flags", "text"),
        ("tokens_per_day_remaining", "bigint"),
        ("tokens_per_hour_remaining", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    ("raw", "email_campaigns"): (
        ("source_id", "text"),
        ("date", "date"),
        ("platform", "text"),
        ("campaign_id", "text"),
        ("campaign_name", "text"),
        ("list_id", "text"),
        ("send_time", "timestamp"),
        ("utm_source", "text"),
        ("utm_campaign", "text"),
        ("emails_sent", "bigint"),
        ("hard_bounces", "bigint"),
        ("soft_bounces", "bigint"),
        ("bounces", "bigint"),
        ("delivered", "bigint"),
        ("unique_opens", "bigint"),
        ("reported_unique_opens", "bigint"),
        ("machine_unique_opens", "bigint"),
        ("machine_opens_excluded", "boolean"),
        ("unique_clicks", "bigint"),
        ("unsubscribes", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    ("raw", "email_list_growth"): (
        ("source_id", "text"),
        ("date", "date"),
        ("list_id", "text"),
        ("subscribes", "bigint"),
        ("unsubscribes", "bigint"),
        ("other_adds", "bigint"),
        ("other_removes", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    ("raw", "session_csv_rows"): (
        ("source_id", "text"),
        ("date", "date"),
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("audience", "text"),
        ("converted", "boolean"),
        ("engaged", "boolean"),
        ("file", "text"),
        ("line", "bigint"),
    ),
    ("marts", "kpi_period_to_date"): (
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_start", "date"),
        ("period_label", "text"),
        ("as_of_date", "date"),
        ("days_elapsed", "bigint"),
        ("value", "double"),
        ("expected", "double"),
        ("status", "text"),
        ("previous_start", "date"),
        ("previous_end", "date"),
        ("previous_value", "double"),
        ("change", "double"),
    ),
    ("marts", "objective_status"): (
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
    ("marts", "tactic_ranking"): (
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
    ("marts", "alert_state"): (
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_start", "date"),
        ("period_label", "text"),
        ("status", "text"),
        ("last_sent_status", "text"),
        ("last_sent_at", "timestamp"),
        ("hold_reason", "text"),
        ("evaluated_at", "timestamp"),
    ),
    ("marts", "alert_deliveries"): (
        ("alert_id", "text"),
        ("channel", "text"),
        ("kind", "text"),
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_label", "text"),
        ("status", "text"),
        ("attempts", "bigint"),
        ("last_error", "text"),
        ("alert_json", "text"),
        ("created_at", "timestamp"),
        ("delivered_at", "timestamp"),
    ),
}

# Version 4 also indexes the new raw tables' partition filters on PostgreSQL.
PARTITION_INDEXES_V4: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ix_ga4_traffic_partition": ("raw", "ga4_traffic", ("source_id", "date")),
    "ix_ga4_events_partition": ("raw", "ga4_events", ("source_id", "date")),
    "ix_session_csv_rows_partition": ("raw", "session_csv_rows", ("source_id", "date")),
}


# Version 5: users KPIs' per-period counts from GA4 (users are not additive across days).
PERIOD_USERS_TABLES_V5: dict[tuple[str, str], Columns] = {
    ("raw", "ga4_period_users"): (
        ("source_id", "text"),
        ("kpi_id", "text"),
        ("grain", "text"),
        ("period_start", "date"),
        ("period_end", "date"),
        ("through_day", "date"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("users", "bigint"),
        ("quality_flags", "text"),
        ("property_id", "text"),
        ("extracted_at", "timestamp"),
    ),
}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection, str], None]  # (connection, SQLAlchemy dialect name)


def _baseline(conn: Connection, dialect: str) -> None:
    # `checkfirst`: a warehouse written before migrations existed already has these tables
    # (same columns); they are adopted as they are, rows included.
    for schema in sorted({schema for schema, _ in BASELINE_TABLES}):
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    for (schema, name), columns in BASELINE_TABLES.items():
        sa_table(schema, name, columns).create(conn, checkfirst=True)


def _partition_indexes(conn: Connection, dialect: str) -> None:
    if dialect != "postgresql":
        return
    for index, (schema, table, columns) in PARTITION_INDEXES.items():
        conn.exec_driver_sql(
            f"create index if not exists {index} on {schema}.{table} ({', '.join(columns)})"
        )


def _source_and_alert_tables_v4(conn: Connection, dialect: str) -> None:
    # `checkfirst`: warehouses that ran these features before this step created the same
    # tables from their specs; they are adopted as they are, rows included.
    for (schema, name), columns in SOURCE_AND_ALERT_TABLES_V4.items():
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        sa_table(schema, name, columns).create(conn, checkfirst=True)
    if dialect == "postgresql":
        for index, (schema, table, columns) in PARTITION_INDEXES_V4.items():
            conn.exec_driver_sql(
                f"create index if not exists {index} on {schema}.{table} ({', '.join(columns)})"
            )


def _period_users_tables_v5(conn: Connection, dialect: str) -> None:
    for (schema, name), columns in PERIOD_USERS_TABLES_V5.items():
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        sa_table(schema, name, columns).create(conn, checkfirst=True)


def _score_columns_v3(conn: Connection, dialect: str) -> None:
    for table in ("kpi_scores", "kpi_snapshots"):
        for column, kind in SCORE_COLUMNS_V3:
            _add_column(conn, "marts", table, column, kind)


def _add_column(conn: Connection, schema: str, table: str, column: str, kind: ColumnType) -> None:
    type_sql = sa.Column(column, _sa_type(kind)).type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"alter table {schema}.{table} add column if not exists {column} {type_sql}"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "raw, plan and marts tables (adopts a warehouse made before migrations)", _baseline
    ),
    Migration(
        2, "indexes for partition replaces and snapshot look-ups (PostgreSQL)", _partition_indexes
    ),
    Migration(3, "quality flags, forecast bounds and hold reason on scores", _score_columns_v3),
    Migration(
        4,
        "GA4, email and session-level source tables; period-to-date, roll-ups and alerts",
        _source_and_alert_tables_v4,
    ),
    Migration(5, "GA4 users per KPI period (users KPIs)", _period_users_tables_v5),
)
HEAD = MIGRATIONS[-1].version


def current_version(warehouse: Warehouse) -> int:
    """The version the warehouse is at (0 when it has never been migrated)."""
    with warehouse.engine.connect() as conn:
        return _version(warehouse, conn)


def migrate(warehouse: Warehouse, target: int | None = None) -> list[int]:
    """Apply the pending migrations up to `target` (default: the latest), each in its own
    transaction; returns the versions applied. Safe to run from several processes at once.
    """
    target = HEAD if target is None else target
    if not 0 <= target <= HEAD:
        raise WarehouseError(f"no migration version {target}: versions run 1..{HEAD}")
    if current_version(warehouse) == target:
        return []
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version > target:
            break
        with warehouse.transaction() as conn:
            warehouse.serialize_writes(conn, "kpi_pipeline:migrations")
            conn.execute(sa.schema.CreateSchema(VERSION_SCHEMA, if_not_exists=True))
            _version_table().create(conn, checkfirst=True)
            if _version(warehouse, conn) >= migration.version:
                continue  # applied meanwhile by another process
            migration.apply(conn, warehouse.dialect)
            conn.execute(
                _version_table()
                .insert()
                .values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=sa.func.now(),
                )
            )
        applied.append(migration.version)
    return applied


def _version(warehouse: Warehouse, conn: Connection) -> int:
    if warehouse.relation_kind(conn, VERSION_SCHEMA, VERSION_TABLE) is None:
        return 0
    version = conn.execute(sa.select(sa.func.max(_version_table().c.version))).scalar_one()
    version = int(version or 0)
    if version > HEAD:
        raise WarehouseError(
            f"the warehouse schema is at version {version}, newer than this code's {HEAD}: "
            "upgrade kpi-pipeline before running it against this warehouse"
        )
    return version


def _version_table() -> sa.Table:
    return sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        schema=VERSION_SCHEMA,
    )
