"""The warehouse: a SQLAlchemy engine with bulk loads and all-or-nothing partition replaces.

Bulk paths, one per engine, never row-by-row SQL:

- DuckDB scans Arrow tables registered on the connection (`insert ... select from view`);
- PostgreSQL receives `COPY ... FROM STDIN (FORMAT csv)` through psycopg 3's `cursor.copy`,
  fed chunk by chunk with CSV that Arrow writes in C++.

Both load in chunks of `CHUNK_ROWS`, so memory stays flat whatever the size of the load.

Plans own their tables: a `Warehouse` scoped to a plan (`for_plan`) maps each declared
schema (`raw`, `plan`, `staging`, `intermediate`, `marts`) to the plan's own
(`<plan id>_raw`, ...), so one plan's writes cannot name another plan's rows. Only `meta`
is shared (which plans exist, schema changes).

Safe writes: a partition is replaced (delete + bulk insert) inside one transaction. On
PostgreSQL a transaction-scoped advisory lock claims the partition (a second run of the same
partition fails at once with `WarehouseBusyError`) and another serialises writers of the same
table (runs of other days wait their turn). DuckDB has a single writer per file; a second
process gets the same `WarehouseBusyError`, naming the process that holds the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.warehouse import timeouts
from kpi_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError, WarehouseTimeout
from kpi_pipeline.warehouse.partitions import Everything, Partition
from kpi_pipeline.warehouse.roles import has_roles, no_roles_message

DEFAULT_WAREHOUSE_URL = "duckdb:///warehouse/kpi.duckdb"
# Rows per Arrow chunk: large enough that per-chunk overhead vanishes, small enough that a
# chunk's CSV text (PostgreSQL) stays a few tens of MiB.
CHUNK_ROWS = 200_000

# Identifiers that reach SQL text from configuration or the command line (role names,
# schemas): lower-case, start with a letter or underscore, at most 63 bytes (PostgreSQL's
# NAMEDATALEN). They are quoted as well; the pattern keeps them readable and unsurprising.
SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_SA_TYPES: dict[ColumnType, Any] = {
    "text": sa.Text,
    "date": sa.Date,
    "bigint": sa.BigInteger,
    "integer": sa.Integer,
    "double": sa.Double,
    "boolean": sa.Boolean,
    "timestamp": sa.DateTime(timezone=True),
}

_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "text": pa.string(),
    "date": pa.date32(),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

_DUCKDB_LOCK = re.compile(
    r"Could not set lock on file \"(?P<file>[^\"]+)\".*?PID (?P<pid>\d+)", re.S
)


def validate_identifier(name: str, what: str = "identifier") -> str:
    """`name` if it is a plain SQL identifier, else a `WarehouseError` saying why."""
    if not SQL_IDENTIFIER.fullmatch(name):
        raise WarehouseError(
            f"{what} {name!r} is not a plain SQL identifier: use lower-case letters, digits "
            "and underscores, starting with a letter or underscore, at most 63 characters"
        )
    return name


# A plan id prefixes its schemas (`<id>_intermediate`): 40 characters keep every schema name
# within PostgreSQL's 63 bytes, which it would otherwise cut silently (and collide).
PLAN_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def validate_plan_id(plan_id: str) -> str:
    if not PLAN_ID.fullmatch(plan_id):
        raise WarehouseError(
            f"plan id {plan_id!r} is not usable: lower-case letters, digits and underscores, "
            "starting with a letter, at most 40 characters (it prefixes the plan's schemas)"
        )
    return plan_id


def create_warehouse_engine(url: str) -> Engine:
    """Engine for `url`; a DuckDB file's folder is created on first use.

    PostgreSQL URLs use psycopg 3 (its COPY is the bulk path): `postgresql://` and
    `postgres://` are read as `postgresql+psycopg://`; another driver is refused. Every
    connection gets the connect, lock and statement timeouts of `timeouts.PostgresTimeouts`
    (URL query, else `KPI_PG_*` environment, else defaults).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "duckdb":
        if parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "do_connect", _connect_duckdb_or_explain)
        return engine
    if backend in ("postgresql", "postgres"):
        driver = parsed.drivername.partition("+")[2]
        if driver in ("", "psycopg"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        else:
            raise WarehouseError(
                f"PostgreSQL driver {driver!r} is not supported: use postgresql+psycopg:// "
                "(psycopg 3, whose COPY is the bulk load path)"
            )
        settings = timeouts.PostgresTimeouts.from_settings(parsed.query, os.environ)
        # The server options of the URL (or PGOPTIONS, which an explicit `options` replaces)
        # come first; the session timeouts after them win.
        given = parsed.query.get("options") or os.environ.get("PGOPTIONS") or ""
        given = given[-1] if isinstance(given, tuple) else given
        parsed = parsed.difference_update_query([*timeouts.SETTINGS, "options"])
        engine = sa.create_engine(
            parsed,
            connect_args={
                **settings.connect_args,
                "options": f"{given} {settings.server_options}".strip(),
            },
        )
        timeouts.install(engine, settings)
        return engine
    return sa.create_engine(parsed)


def _connect_duckdb_or_explain(dialect, conn_rec, cargs, cparams):
    """Open the DuckDB file; if another process holds it, say who and what to do."""
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as exc:
        match = _DUCKDB_LOCK.search(str(exc))
        if match is None:
            raise
        raise WarehouseBusyError(
            f"the DuckDB warehouse {match['file']} is in use by another process "
            f"(PID {match['pid']}). DuckDB allows one writing process at a time, so two runs "
            "cannot write it at once and this run changed nothing: re-run it when the other "
            "run has finished, or use PostgreSQL (KPI_WAREHOUSE_URL=postgresql+psycopg://...) "
            "for concurrent runs."
        ) from None


# The schema every plan shares; every other declared schema is the plan's own.
SHARED_SCHEMA = "meta"
PLAN_SCHEMAS = ("raw", "plan", "staging", "intermediate", "marts")
# A declared schema name used as a qualifier in SQL text (`marts.kpi_scores`), not part of
# a longer name (`demo_marts.`) or a column reference (`t.marts.x`).
_SCHEMA_PLACEHOLDER = re.compile(r"\{(raw|plan|staging|intermediate|marts)\}")
_DECLARED_SCHEMA = re.compile(r"(?<![\w.\"])(raw|plan|staging|intermediate|marts)\.(?=[a-z_\"])")


class Warehouse:
    """Reads and writes through one engine. Writes happen inside `transaction()`.

    Scoped to a plan (`plan_id`), every declared schema is that plan's own: `raw` is
    `<plan_id>_raw`. Unscoped, schemas are used as declared (tools and tests of the engine).
    """

    def __init__(self, engine: Engine, plan_id: str | None = None):
        self.engine = engine
        self.plan_id = None if plan_id is None else validate_plan_id(plan_id)
        self._migrated = False

    @classmethod
    def from_url(cls, url: str, plan_id: str | None = None) -> Warehouse:
        return cls(create_warehouse_engine(url), plan_id)

    def for_plan(self, plan_id: str) -> Warehouse:
        """The same engine, scoped to `plan_id`'s schemas."""
        return Warehouse(self.engine, plan_id)

    def schema_name(self, schema: str) -> str:
        """The physical schema of a declared one (`raw` -> `<plan_id>_raw`)."""
        if self.plan_id is None or schema == SHARED_SCHEMA:
            return schema
        return f"{self.plan_id}_{schema}"

    def plan_sql(self, sql: str) -> str:
        """`sql` written with declared schemas (`select * from marts.kpi_scores`, or
        `{marts}.kpi_scores`) made to read this plan's own (`demo_marts.kpi_scores`)."""
        sql = _SCHEMA_PLACEHOLDER.sub(lambda m: self.schema_name(m.group(1)), sql)
        return _DECLARED_SCHEMA.sub(lambda m: f"{self.schema_name(m.group(1))}.", sql)

    def relation(self, spec_or_schema: TableSpec | str, name: str | None = None) -> str:
        """Quoted physical name of a declared table (or of `schema`, `name`), for SQL text."""
        if isinstance(spec_or_schema, TableSpec):
            schema, name = spec_or_schema.schema, spec_or_schema.name
        else:
            schema = spec_or_schema
        assert name is not None
        q = self._quote_identifier
        return f"{q(self.schema_name(schema))}.{q(name)}"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, joining: Connection | None = None) -> Iterator[Connection]:
        """Everything done through the yielded connection commits together or not at all.

        With `joining` (a connection already in a transaction) the work joins that one,
        committing when its owner does: so several writers can publish as one."""
        if joining is not None:
            yield joining
            return
        with self.engine.begin() as conn:
            yield conn

    # -- schema -------------------------------------------------------------------------

    def migrate(self, target: int | None = None) -> list[int]:
        """Bring the shared `meta` schema to `target` (default: latest); returns the versions
        applied. A plan's own tables are created from their declarations by `ensure_table`."""
        from kpi_pipeline.warehouse.migrations import migrate

        applied = migrate(self, target)
        self._migrated = target is None
        return applied

    def ensure_table(self, spec: TableSpec, conn: Connection | None = None) -> None:
        """Make sure `spec`'s table exists (in this plan's schema) with every declared column.

        Tables are declared once, in their `TableSpec`: a missing table is created from it,
        a declared column the table lacks is added (nullable, so existing rows keep their
        values) and recorded in `meta.schema_changes`. A column whose type differs from the
        declaration is an error: changing a type is not something to do silently.
        """
        if not self._migrated:
            self.migrate()
        from kpi_pipeline.warehouse.migrations import evolve_table

        with self.transaction(conn) as c:
            self.serialize_writes(c, f"ddl:{self.schema_name(spec.schema)}.{spec.name}")
            evolve_table(self, c, spec)

    def ensure_schema(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute(sa.schema.CreateSchema(self.schema_name(name), if_not_exists=True))

    def relation_kind(self, conn: Connection, schema: str, name: str) -> str | None:
        """'table', 'view' or None when `schema.name` does not exist."""
        row = conn.execute(
            sa.text(
                "select table_type from information_schema.tables "
                "where table_schema = :schema and table_name = :name"
            ),
            {"schema": schema, "name": name},
        ).first()
        if row is None:
            return None
        return "view" if "VIEW" in str(row[0]).upper() else "table"

    def column_names(self, conn: Connection, schema: str, name: str) -> list[str]:
        """Columns of `schema.name` in table order (empty when it does not exist)."""
        rows = conn.execute(
            sa.text(
                "select column_name from information_schema.columns "
                "where table_schema = :schema and table_name = :name order by ordinal_position"
            ),
            {"schema": schema, "name": name},
        )
        return [row[0] for row in rows]

    # -- locks --------------------------------------------------------------------------

    def claim_partition(self, conn: Connection, spec: TableSpec, scope: Mapping[str, Any]) -> None:
        """Claim `spec`'s partition `scope` for this transaction, or fail if another run has it.

        PostgreSQL: `pg_try_advisory_xact_lock` on a key of table and scope, released at
        commit or rollback (or when a killed client's connection drops). DuckDB: nothing to
        do, its file lock already admits a single writing process.
        """
        if not self.is_postgres:
            return
        name = f"{self.schema_name(spec.schema)}.{spec.name}"
        key = _lock_key(name, *(f"{k}={scope[k]}" for k in sorted(scope)))
        got = conn.execute(sa.text("select pg_try_advisory_xact_lock(:key)"), {"key": key})
        if got.scalar_one():
            return
        described = ", ".join(f"{k}={scope[k]!s}" for k in sorted(scope)) or "the whole table"
        raise WarehouseBusyError(
            f"{name}: another run is replacing the same partition "
            f"({described}){self._holder(conn, key)}. Runs of one partition cannot interleave, "
            "so this write stopped before changing anything: re-run it when the other run has "
            "finished."
        )

    def serialize_writes(self, conn: Connection, relation: str | TableSpec) -> None:
        """Wait until no other transaction writes `relation`, then hold it until commit."""
        if isinstance(relation, TableSpec):
            relation = f"{self.schema_name(relation.schema)}.{relation.name}"
        if not self.is_postgres:
            return
        # Another run's write of the table ends with its commit: wait for it (statement_timeout
        # bounds the wait), not for lock_timeout, which is for analysts' sessions.
        previous = conn.execute(sa.text("select current_setting('lock_timeout')")).scalar_one()
        conn.execute(sa.text("select set_config('lock_timeout', '0', true)"))
        try:
            conn.execute(
                sa.text("select pg_advisory_xact_lock(:key)"), {"key": _lock_key(relation)}
            )
        except WarehouseTimeout:
            raise WarehouseTimeout(
                f"{relation}: another run kept writing it for longer than statement_timeout, "
                "so this run stopped waiting for its turn, changing nothing: re-run it when "
                "the other run has finished"
            ) from None
        conn.execute(
            sa.text("select set_config('lock_timeout', :previous, true)"), {"previous": previous}
        )

    def _holder(self, conn: Connection, key: int) -> str:
        row = conn.execute(
            sa.text(
                "select l.pid, a.application_name, a.xact_start "
                "from pg_locks l left join pg_stat_activity a on a.pid = l.pid "
                "where l.locktype = 'advisory' and l.granted and l.objsubid = 1 "
                "and l.database = (select oid from pg_database where datname = current_database()) "
                "and l.classid::bigint = :hi and l.objid::bigint = :lo limit 1"
            ),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        ).first()
        if row is None:
            return ""
        since = f", in a transaction since {row.xact_start:%Y-%m-%d %H:%M:%S%z}" if row[2] else ""
        app = f" ({row.application_name})" if row.application_name else ""
        return f" — PostgreSQL backend pid {row.pid}{app}{since}"

    # -- writes -------------------------------------------------------------------------

    def replace_rows(
        self,
        conn: Connection,
        spec: TableSpec,
        frame: pd.DataFrame | Iterable[pd.DataFrame],
        partition: Partition,
    ) -> int:
        """Delete `partition`'s rows, then bulk insert `frame`; returns the rows inserted.

        Run inside `transaction()`: a failure part way leaves the previous rows in place. The
        partition is claimed first, so a second run of it fails with a clear message
        instead of interleaving.
        """
        self.claim_partition(conn, spec, partition.scope())
        self.delete_rows(conn, spec, partition)
        return self.bulk_insert(conn, spec, frame)

    def delete_rows(self, conn: Connection, spec: TableSpec, partition: Partition) -> int:
        """Delete `partition`'s rows of `spec` (writers of the table take turns); row count."""
        self.serialize_writes(conn, spec)
        table = self.table(spec)
        return int(conn.execute(sa.delete(table).where(partition.condition(table))).rowcount)

    def count_rows(
        self, conn: Connection, spec: TableSpec, partition: Partition, by: str | None = None
    ) -> dict[Any, int]:
        """Rows of `partition`, grouped by column `by` (or `{None: n}`)."""
        table = self.table(spec)
        key = table.c[by] if by else sa.literal(None)
        query = sa.select(key, sa.func.count()).select_from(table).where(partition.condition(table))
        if by:
            query = query.group_by(key)
        return {row[0]: int(row[1]) for row in conn.execute(query) if row[1]}

    def rewrite_table(self, spec: TableSpec, frame: pd.DataFrame) -> int:
        """Make sure `spec` exists, then replace all its rows with `frame` in one transaction."""
        self.ensure_table(spec)
        with self.transaction() as conn:
            return self.replace_all(conn, spec, frame)

    def replace_all(
        self, conn: Connection, spec: TableSpec, frame: pd.DataFrame | Iterable[pd.DataFrame]
    ) -> int:
        self.delete_rows(conn, spec, Everything())
        return self.bulk_insert(conn, spec, frame)

    def bulk_insert(
        self,
        conn: Connection,
        spec: TableSpec,
        frames: pd.DataFrame | Iterable[pd.DataFrame],
        chunk_rows: int = CHUNK_ROWS,
    ) -> int:
        """Insert one frame or a stream of frames in bulk, `chunk_rows` rows at a time."""
        chunks = (
            arrow_chunk
            for frame in ([frames] if isinstance(frames, pd.DataFrame) else frames)
            for arrow_chunk in _arrow_chunks(spec, frame, chunk_rows)
        )
        if self.is_postgres:
            return self._copy_postgres(conn, spec, chunks)
        return self._insert_arrow(conn, spec, chunks)

    def _insert_arrow(self, conn: Connection, spec: TableSpec, chunks: Iterable[pa.Table]) -> int:
        """DuckDB (and any engine whose driver can scan Arrow): insert from a registered view."""
        columns = ", ".join(self._quote_identifier(c) for c in spec.column_names)
        raw = conn.connection.driver_connection
        if not hasattr(raw, "register"):
            raise WarehouseError(f"no bulk load path for the {self.dialect} dialect")
        rows = 0
        for chunk in chunks:
            view = f"_kpi_load_{uuid.uuid4().hex}"
            raw.register(view, chunk)
            try:
                conn.exec_driver_sql(
                    f"insert into {self._quoted(spec)} ({columns}) select {columns} from {view}"
                )
            finally:
                raw.unregister(view)
            rows += chunk.num_rows
        return rows

    def _copy_postgres(self, conn: Connection, spec: TableSpec, chunks: Iterable[pa.Table]) -> int:
        """PostgreSQL: one `COPY FROM STDIN` fed with Arrow-written CSV, chunk by chunk."""
        columns = ", ".join(self._quote_identifier(c) for c in spec.column_names)
        sql = f"copy {self._quoted(spec)} ({columns}) from stdin with (format csv)"
        options = pa_csv.WriteOptions(include_header=False, batch_size=CHUNK_ROWS)
        raw = conn.connection.driver_connection
        rows = 0
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for chunk in chunks:
                    if chunk.num_rows == 0:
                        continue
                    buffer = io.BytesIO()
                    # Strings are always quoted and nulls left empty: '' and NULL stay distinct.
                    pa_csv.write_csv(chunk, buffer, options)
                    copy.write(buffer.getbuffer())
                    rows += chunk.num_rows
        except WarehouseError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                raise WarehouseError(f"{self.relation(spec)}: COPY failed: {exc}") from exc
            raise
        return rows

    # -- analyst access -----------------------------------------------------------------

    def grant_readonly(self, role: str, schemas: Iterable[str] = ("marts",)) -> list[str]:
        """Let PostgreSQL `role` SELECT the tables of `schemas` (the marts) and nothing else.

        Default privileges cover tables the pipeline re-creates later (`kpi_values` is
        rebuilt every run), so the grant survives runs. Returns the statements executed.
        """
        if not has_roles(self.dialect):
            raise WarehouseError(no_roles_message(self.dialect))
        validate_identifier(role, "role name")
        schema_names = [validate_identifier(self.schema_name(s), "schema name") for s in schemas]
        self.migrate()
        with self.transaction() as conn:
            exists = conn.execute(
                sa.text("select 1 from pg_roles where rolname = :role"), {"role": role}
            ).first()
            if exists is None:
                raise WarehouseError(
                    f"role {role!r} does not exist: create it first, e.g. "
                    f"CREATE ROLE {role} LOGIN PASSWORD '...'"
                )
            database = conn.execute(sa.text("select current_database()")).scalar_one()
            q = self._quote_identifier
            statements = [f"grant connect on database {q(database)} to {q(role)}"]
            for schema in schema_names:
                statements += [
                    f"grant usage on schema {q(schema)} to {q(role)}",
                    f"grant select on all tables in schema {q(schema)} to {q(role)}",
                    f"alter default privileges in schema {q(schema)} "
                    f"grant select on tables to {q(role)}",
                ]
            for statement in statements:
                conn.exec_driver_sql(statement)
        return statements

    # -- reads --------------------------------------------------------------------------

    def read_frame(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> pd.DataFrame:
        """Rows of `sql`; through `conn` when given (a transaction sees its own writes)."""
        if conn is not None:
            return pd.read_sql_query(sa.text(sql), conn, params=dict(params or {}))
        with self.engine.connect() as own:
            return pd.read_sql_query(sa.text(sql), own, params=dict(params or {}))

    def table_exists(self, schema: str, name: str) -> bool:
        """Whether the declared `schema`.`name` exists (in this plan's schema when scoped)."""
        with self.engine.connect() as conn:
            return self.relation_kind(conn, self.schema_name(schema), name) is not None

    # -- helpers ------------------------------------------------------------------------

    def _quote_identifier(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def _quoted(self, spec: TableSpec) -> str:
        return self.relation(spec)

    def table(self, spec: TableSpec) -> sa.Table:
        """The SQLAlchemy table of `spec` in its physical schema (for expressions)."""
        return sa_table(self.schema_name(spec.schema), spec.name, spec.columns)


def sa_table(schema: str, name: str, columns: Iterable[tuple[str, ColumnType]]) -> sa.Table:
    """A SQLAlchemy table for declared columns (each dialect renders its own types)."""
    return sa.Table(
        name,
        sa.MetaData(),
        *(sa.Column(column, _SA_TYPES[kind]) for column, kind in columns),
        schema=schema,
    )


def sa_type(kind: ColumnType) -> Any:
    """The SQLAlchemy type of a declared column type."""
    return _SA_TYPES[kind]


def to_arrow(spec: TableSpec, frame: pd.DataFrame) -> pa.Table:
    """`frame`'s declared columns as an Arrow table of the declared types (NaN -> null)."""
    missing = [c for c in spec.column_names if c not in frame.columns]
    if missing:
        raise WarehouseError(f"{spec.qualified_name}: frame lacks columns {missing}")
    arrays = []
    for name, kind in spec.columns:
        try:
            array = pa.array(frame[name], from_pandas=True)
            target = _ARROW_TYPES[kind]
            if array.type != target:
                array = array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise WarehouseError(
                f"{spec.qualified_name}.{name}: values do not fit the declared {kind}: {exc}"
            ) from exc
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=spec.column_names)


def _arrow_chunks(spec: TableSpec, frame: pd.DataFrame, chunk_rows: int) -> Iterator[pa.Table]:
    # An empty frame inserts nothing, whatever its columns (sources emit bare empty frames).
    for start in range(0, len(frame), chunk_rows):
        yield to_arrow(spec, frame.iloc[start : start + chunk_rows])


def _lock_key(*parts: str) -> int:
    """A stable signed 64-bit advisory-lock key for `parts` (same text, same key)."""
    digest = hashlib.blake2b("\x1f".join(("kpi_pipeline", *parts)).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def read_frame_once(
    url: str, sql: str, params: Mapping[str, Any] | None = None, plan_id: str | None = None
) -> pd.DataFrame:
    """Open the warehouse, read, close: for one-off reads that must not hold a DuckDB file.
    With `plan_id`, the declared schemas in `sql` (`marts.kpi_scores`, or `{marts}`) name
    that plan's own (see `Warehouse.plan_sql`)."""
    warehouse = Warehouse.from_url(url)
    if plan_id is not None:
        sql = warehouse.for_plan(plan_id).plan_sql(sql)
    try:
        return warehouse.read_frame(sql, params)
    finally:
        warehouse.dispose()
