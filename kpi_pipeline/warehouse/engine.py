"""The warehouse: a SQLAlchemy engine with bulk loads and all-or-nothing partition replaces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from kpi_pipeline.lib.tables import ColumnType, TableSpec

DEFAULT_WAREHOUSE_URL = "duckdb:///warehouse/kpi.duckdb"

_SA_TYPES: dict[ColumnType, Any] = {
    "text": sa.Text,
    "date": sa.Date,
    "bigint": sa.BigInteger,
    "integer": sa.Integer,
    "double": sa.Double,
    "boolean": sa.Boolean,
    "timestamp": sa.DateTime(timezone=True),
}


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the transaction was rolled back."""


def create_warehouse_engine(url: str) -> Engine:
    """Engine for `url`; a DuckDB file's folder is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(parsed)


class Warehouse:
    """Reads and writes through one engine. Writes happen inside `transaction()`."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Warehouse:
        return cls(create_warehouse_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Everything done through the yielded connection commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

    # -- schema -------------------------------------------------------------------------

    def ensure_table(self, spec: TableSpec, conn: Connection | None = None) -> None:
        """Create `spec`'s schema and table if missing (existing tables are left alone)."""
        with self._maybe_transaction(conn) as c:
            c.execute(sa.schema.CreateSchema(spec.schema, if_not_exists=True))
            self._table(spec).create(c, checkfirst=True)

    def ensure_schema(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute(sa.schema.CreateSchema(name, if_not_exists=True))

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

    # -- writes -------------------------------------------------------------------------

    def replace_rows(
        self,
        conn: Connection,
        spec: TableSpec,
        frame: pd.DataFrame,
        where: str,
        params: Mapping[str, Any],
    ) -> int:
        """Delete the rows matching `where` (bind parameters only), then bulk insert `frame`.

        Run inside `transaction()`: a failure part way leaves the previous rows in place.
        """
        conn.execute(sa.text(f"delete from {self._quoted(spec)} where {where}"), dict(params))
        return self.bulk_insert(conn, spec, frame)

    def replace_all(self, conn: Connection, spec: TableSpec, frame: pd.DataFrame) -> int:
        conn.execute(sa.text(f"delete from {self._quoted(spec)}"))
        return self.bulk_insert(conn, spec, frame)

    def bulk_insert(self, conn: Connection, spec: TableSpec, frame: pd.DataFrame) -> int:
        """Insert a frame in bulk: DuckDB scans the DataFrame in place (no row-by-row SQL)."""
        if frame.empty:
            return 0
        missing = [c for c in spec.column_names if c not in frame.columns]
        if missing:
            raise WarehouseError(f"{spec.qualified_name}: frame lacks columns {missing}")
        frame = frame[spec.column_names]
        columns = ", ".join(self._quote_identifier(c) for c in spec.column_names)
        if self.dialect == "duckdb":
            raw = conn.connection.driver_connection
            view = f"_kpi_load_{uuid.uuid4().hex}"
            raw.register(view, frame)
            try:
                conn.exec_driver_sql(
                    f"insert into {self._quoted(spec)} ({columns}) select {columns} from {view}"
                )
            finally:
                raw.unregister(view)
        else:
            # Portable fallback (one executemany); server warehouses get their own bulk path.
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            conn.execute(self._table(spec).insert(), records)
        return len(frame)

    # -- reads --------------------------------------------------------------------------

    def read_frame(self, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_query(sa.text(sql), conn, params=dict(params or {}))

    def table_exists(self, schema: str, name: str) -> bool:
        with self.engine.connect() as conn:
            return self.relation_kind(conn, schema, name) is not None

    # -- helpers ------------------------------------------------------------------------

    @contextmanager
    def _maybe_transaction(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    def _quote_identifier(self, name: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(name)

    def _quoted(self, spec: TableSpec) -> str:
        return f"{self._quote_identifier(spec.schema)}.{self._quote_identifier(spec.name)}"

    @staticmethod
    def _table(spec: TableSpec) -> sa.Table:
        return sa.Table(
            spec.name,
            sa.MetaData(),
            *(sa.Column(name, _SA_TYPES[kind]) for name, kind in spec.columns),
            schema=spec.schema,
        )
