"""The warehouse's schema: tables declared once, in their `TableSpec`, and evolved from it.

Every table a plan writes is declared in exactly one place, its `TableSpec` (next to the
code that writes it). `evolve_table` creates it in the plan's schema when it is missing and
adds any declared column it lacks (nullable: existing rows keep their values), recording
each change in `meta.schema_changes`. Only additive changes happen on their own: a column
whose type differs from its declaration stops the run with a message, never a silent cast.

The shared `meta` schema (which plans exist, the change log) is versioned by the small
`MIGRATIONS` list below, each step applied once in its own transaction, recorded in
`meta.schema_versions`, with concurrent migrators serialised by an advisory lock on
PostgreSQL. Why not Alembic: the tables are data (`TableSpec`) that must build the same on
DuckDB and PostgreSQL, and a second description of each table is exactly what this module
exists to avoid.

Warehouses written before plans owned their rows keep their old `raw`, `plan`, `staging`,
`intermediate` and `marts` schemas untouched (with `meta.schema_migrations`): nothing here
deletes what it did not write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.warehouse.engine import SHARED_SCHEMA, WarehouseError, sa_table, sa_type

if TYPE_CHECKING:
    from kpi_pipeline.warehouse.engine import Warehouse

VERSION_TABLE = "schema_versions"

PLANS = TableSpec(
    SHARED_SCHEMA,
    "plans",
    (
        ("plan_id", "text"),
        ("plan_hash", "text"),
        ("plan_path", "text"),
        ("id_declared", "boolean"),
        ("schema_prefix", "text"),
        ("last_run_id", "text"),
        ("last_run_at", "timestamp"),
    ),
    grain="one row per plan that has run against this warehouse (as last run)",
    keys=("plan_id",),
)

SCHEMA_CHANGES = TableSpec(
    SHARED_SCHEMA,
    "schema_changes",
    (
        ("schema_name", "text"),
        ("table_name", "text"),
        ("change", "text"),
        ("column_name", "text"),
        ("column_type", "text"),
        ("changed_at", "timestamp"),
    ),
    grain="one row per table created or column added from a declaration",
)

META_TABLES = (PLANS, SCHEMA_CHANGES)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection, str], None]  # (connection, SQLAlchemy dialect name)


def _meta_tables(conn: Connection, dialect: str) -> None:
    for spec in META_TABLES:
        sa_table(spec.schema, spec.name, spec.columns).create(conn, checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "meta.plans and meta.schema_changes (plan-scoped schemas)", _meta_tables),
)
HEAD = MIGRATIONS[-1].version


def current_version(warehouse: Warehouse) -> int:
    """The version `meta` is at (0 when it has never been migrated)."""
    with warehouse.engine.connect() as conn:
        return _version(warehouse, conn)


def migrate(warehouse: Warehouse, target: int | None = None) -> list[int]:
    """Apply the pending `meta` migrations up to `target` (default: the latest), each in its
    own transaction; returns the versions applied. Safe to run from several processes."""
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
            conn.execute(sa.schema.CreateSchema(SHARED_SCHEMA, if_not_exists=True))
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


def evolve_table(warehouse: Warehouse, conn: Connection, spec: TableSpec) -> list[str]:
    """Create `spec`'s table, or add the declared columns it lacks; returns what changed."""
    schema = warehouse.schema_name(spec.schema)
    existing = _column_types(warehouse, conn, schema, spec.name)
    changes: list[tuple[str, str | None, str | None]] = []
    if not existing:
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        sa_table(schema, spec.name, spec.columns).create(conn, checkfirst=True)
        changes.append(("create table", None, None))
    else:
        wrong = [
            f"{name} is {existing[name]}, declared {kind}"
            for name, kind in spec.columns
            if name in existing and not _same_type(existing[name], kind)
        ]
        if wrong:
            raise WarehouseError(
                f"{schema}.{spec.name}: column types differ from the declaration "
                f"({'; '.join(wrong)}): convert the column by hand, or rename the table so "
                "it is created anew"
            )
        for name, kind in spec.columns:
            if name not in existing:
                type_sql = sa.Column(name, sa_type(kind)).type.compile(dialect=conn.dialect)
                q = warehouse.engine.dialect.identifier_preparer.quote
                conn.exec_driver_sql(
                    f"alter table {q(schema)}.{q(spec.name)} add column {q(name)} {type_sql}"
                )
                changes.append(("add column", name, kind))
    if warehouse.is_postgres:
        for columns in spec.indexes:
            index = f"ix_{spec.name}_{'_'.join(columns)}"[:63]
            # Look first: even `create index if not exists` takes a SHARE lock on the table,
            # which would queue this check behind any run writing it.
            known = conn.execute(
                sa.text("select 1 from pg_indexes where schemaname = :s and indexname = :i"),
                {"s": schema, "i": index},
            ).first()
            if known is not None:
                continue
            q = warehouse.engine.dialect.identifier_preparer.quote
            conn.exec_driver_sql(
                f"create index if not exists {q(index)} on {q(schema)}.{q(spec.name)} "
                f"({', '.join(q(c) for c in columns)})"
            )
    if changes and spec.schema != SHARED_SCHEMA:
        log = sa_table(SHARED_SCHEMA, SCHEMA_CHANGES.name, SCHEMA_CHANGES.columns)
        conn.execute(
            log.insert(),
            [
                {
                    "schema_name": schema,
                    "table_name": spec.name,
                    "change": change,
                    "column_name": column,
                    "column_type": kind,
                    "changed_at": dt.datetime.now(dt.UTC),
                }
                for change, column, kind in changes
            ],
        )
    return [f"{change} {column or ''}".strip() for change, column, _ in changes]


# information_schema type names -> declared column types, on DuckDB and PostgreSQL.
_TYPE_NAMES: dict[str, ColumnType] = {
    "text": "text",
    "varchar": "text",
    "character varying": "text",
    "date": "date",
    "bigint": "bigint",
    "integer": "integer",
    "int": "integer",
    "double": "double",
    "double precision": "double",
    "float8": "double",
    "boolean": "boolean",
    "timestamp with time zone": "timestamp",
    "timestamptz": "timestamp",
}


def _same_type(found: str, declared: ColumnType) -> bool:
    known = _TYPE_NAMES.get(found.lower())
    return known is None or known == declared


def _column_types(warehouse: Warehouse, conn: Connection, schema: str, name: str) -> dict:
    rows = conn.execute(
        sa.text(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = :schema and table_name = :name order by ordinal_position"
        ),
        {"schema": schema, "name": name},
    )
    return {row[0]: str(row[1]) for row in rows}


def _version(warehouse: Warehouse, conn: Connection) -> int:
    if warehouse.relation_kind(conn, SHARED_SCHEMA, VERSION_TABLE) is None:
        return 0
    version = conn.execute(sa.select(sa.func.max(_version_table().c.version))).scalar_one()
    version = int(version or 0)
    if version > HEAD:
        raise WarehouseError(
            f"the warehouse's meta schema is at version {version}, newer than this code's "
            f"{HEAD}: upgrade kpi-pipeline before running it against this warehouse"
        )
    return version


def _version_table() -> sa.Table:
    return sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        schema=SHARED_SCHEMA,
    )
