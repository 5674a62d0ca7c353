"""Opening the warehouse from a command, outside a run: readers that never wait for a run.

DuckDB admits one writing process per file, and a run holds the file from start to end;
a reader that opened it then would fail. So a command that reads (`scorecard`, `report`)
opens the file read-only when it is free, and when another process holds it, reads a
*snapshot*: the file (and its write-ahead log) copied without taking any lock, then opened
read-only. The snapshot shows what the run had committed when it was taken (a run part way
may show the previous scores); it is deleted when the warehouse is disposed.

A copy taken while the writer checkpoints can be torn: the copy is checked (the file did
not change while it was copied, and DuckDB opens it) and retried a few times before the
command gives up with a message saying who holds the file.

PostgreSQL needs none of this (readers never block writers); the URL is checked, and a
connection that fails says why in one line, with the password masked.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.errors import WarehouseBusyError, WarehouseError

SUPPORTED_URLS = (
    "duckdb:///path/to/kpi.duckdb (a file; relative paths start from the current folder) "
    "or postgresql+psycopg://user@host:5432/database"
)
SNAPSHOT_ATTEMPTS = 5


class UnsupportedWarehouseUrl(WarehouseError):
    """A URL naming a database the pipeline does not support (sqlite, mysql, nonsense)."""


class WarehouseNotFound(WarehouseError):
    """A reader was pointed at a DuckDB file that does not exist (a wrong folder or URL)."""


class WarehouseUnreachable(WarehouseError):
    """The server refused the connection: unknown database, bad credentials, server down."""


def masked_url(url: str | URL) -> str:
    """`url` with its password shown as `***`, for messages and summaries."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable warehouse URL>"


def check_url(url: str) -> URL:
    """The parsed URL if the pipeline supports its database, else `UnsupportedWarehouseUrl`."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise UnsupportedWarehouseUrl(
            f"warehouse URL {url!r} is not a database URL: use {SUPPORTED_URLS}"
        ) from None
    if parsed.get_backend_name() not in ("duckdb", "postgresql", "postgres"):
        raise UnsupportedWarehouseUrl(
            f"warehouse URL {masked_url(parsed)}: {parsed.get_backend_name()} is not supported; "
            f"use {SUPPORTED_URLS} (set KPI_WAREHOUSE_URL)"
        )
    return parsed


def duckdb_path(url: str | URL) -> Path | None:
    """The file a DuckDB URL names, made absolute (None for PostgreSQL or `:memory:`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def connect_or_explain(warehouse: Warehouse, url: str) -> None:
    """Open and close one connection, turning a refused one into a one-line error.

    DuckDB's busy file already raises `WarehouseBusyError` (engine.py); PostgreSQL's
    refusals arrive as `OperationalError` and are explained here, password masked.
    """
    try:
        with warehouse.engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        raise explain_connect_error(url, exc) from None


def explain_connect_error(url: str, exc: sa.exc.OperationalError) -> WarehouseUnreachable:
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    orig = getattr(exc, "orig", None)
    text = str(orig or exc)
    # libpq reports a refused connection as text only (psycopg's sqlstate is None there).
    if f'database "{parsed.database}" does not exist' in text:
        return WarehouseUnreachable(
            f"PostgreSQL database {parsed.database!r} does not exist on {where} "
            f"(warehouse {masked_url(parsed)}): create it (createdb -h {parsed.host or 'localhost'}"
            f" -p {parsed.port or 5432} {parsed.database}) or fix KPI_WAREHOUSE_URL"
        )
    reason = _last_fatal(text)
    return WarehouseUnreachable(
        f"cannot reach the warehouse {masked_url(parsed)}: {reason}. Check the host, port, "
        "user and database in KPI_WAREHOUSE_URL and that the server is up"
    )


def _last_fatal(text: str) -> str:
    """The line of a libpq message that says why (`FATAL: ...`), without SQLAlchemy's tail."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "FATAL:" in line:
            return line.split("FATAL:", 1)[1].strip()
    head = lines[0] if lines else "connection failed"
    return head.split("connection failed: ", 1)[-1]


@dataclass
class ReadAccess:
    """How a reader got at the warehouse, for a one-line note to the person reading."""

    url: str
    snapshot_of: Path | None = None  # the busy file a snapshot was copied from
    holder: str = ""  # "PID 1234" when known

    def note(self) -> str | None:
        if self.snapshot_of is None:
            return None
        return (
            f"note: {self.snapshot_of} is being written by another process "
            f"({self.holder or 'a run'}): reading a snapshot of what it had committed; "
            "run the command again after the run for the latest"
        )


class ReadOnlyWarehouse(Warehouse):
    """A warehouse opened read-only (DuckDB), maybe on a snapshot copy deleted on dispose."""

    def __init__(self, engine, plan_id: str | None, access: ReadAccess, cleanup: Path | None):
        super().__init__(engine, plan_id)
        self.access = access
        self._cleanup = cleanup
        sa.event.listen(engine, "handle_error", self._explain_write)

    def _explain_write(self, context) -> None:
        if "read-only mode" in str(context.original_exception) and self.access.snapshot_of:
            raise WarehouseBusyError(
                f"{self.access.snapshot_of} is in use by another process "
                f"({self.access.holder or 'a run'}) and this command writes: it changed "
                "nothing; run it again when that process has finished"
            ) from None

    def dispose(self) -> None:
        super().dispose()
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None


def open_warehouse(url: str, plan_id: str, *, read_only: bool | None = None) -> Warehouse:
    """The plan's warehouse for a command run outside a run, never creating a DuckDB file.

    `read_only=True` opens DuckDB read-only (a snapshot if another process holds the file);
    `False` opens it for writing (a busy file is a `WarehouseBusyError`); `None` writes when
    the file is free and falls back to a read-only snapshot when it is not. PostgreSQL is
    opened as usual whatever the mode, its connection checked.
    """
    check_url(url)
    path = duckdb_path(url)
    if path is None:
        warehouse = Warehouse.from_url(url, plan_id)
        if warehouse.is_postgres:
            try:
                connect_or_explain(warehouse, url)
            except WarehouseError:
                warehouse.dispose()
                raise
        return warehouse
    if not path.is_file():
        raise WarehouseNotFound(
            f"no warehouse at {path} (warehouse URL {masked_url(url)}, relative to the current "
            f"folder {Path.cwd()}): run the command from the project folder, or set "
            "KPI_WAREHOUSE_URL to the warehouse a run wrote"
        )
    if not read_only:
        warehouse = Warehouse.from_url(url, plan_id)
        try:
            connect_or_explain(warehouse, url)
            return warehouse
        except WarehouseBusyError:
            warehouse.dispose()
            if read_only is False:
                raise
    return _open_read_only(path, url, plan_id)


def _open_read_only(path: Path, url: str, plan_id: str) -> ReadOnlyWarehouse:
    direct = _read_only_engine(url, path)
    try:
        with direct.connect():
            pass
        return ReadOnlyWarehouse(direct, plan_id, ReadAccess(url), cleanup=None)
    except sa.exc.DBAPIError as exc:
        direct.dispose()
        holder = _holder(str(exc))
        if holder is None:
            raise
    return _open_snapshot(path, url, plan_id, holder)


def _open_snapshot(path: Path, url: str, plan_id: str, holder: str) -> ReadOnlyWarehouse:
    last_error = ""
    for attempt in range(SNAPSHOT_ATTEMPTS):
        folder = Path(tempfile.mkdtemp(prefix="kpi-snapshot-"))
        copy = folder / path.name
        try:
            if _copy_unchanged(path, copy):
                engine = _read_only_engine(url, copy)
                with engine.connect() as conn:
                    conn.execute(sa.text("select 1"))
                access = ReadAccess(url, snapshot_of=path, holder=holder)
                return ReadOnlyWarehouse(engine, plan_id, access, cleanup=folder)
            last_error = "the file changed while it was copied"
        except (OSError, sa.exc.DBAPIError) as exc:
            last_error = str(getattr(exc, "orig", exc)).splitlines()[0]
        shutil.rmtree(folder, ignore_errors=True)
        time.sleep(0.2 * (attempt + 1))
    raise WarehouseBusyError(
        f"the DuckDB warehouse {path} is being written by another process ({holder}) and no "
        f"consistent snapshot could be copied in {SNAPSHOT_ATTEMPTS} attempts ({last_error}): "
        "run the command again when that run has finished"
    )


def _copy_unchanged(path: Path, copy: Path) -> bool:
    """Copy the file and its write-ahead log; True if neither changed during the copy."""
    wal = path.with_name(path.name + ".wal")
    before = _stamp(path), _stamp(wal)
    shutil.copyfile(path, copy)
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
    return (_stamp(path), _stamp(wal)) == before


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _read_only_engine(url: str, path: Path) -> sa.Engine:
    """A read-only DuckDB engine on `path` (the file or its snapshot) that keeps `url` as its
    URL, so a command deriving folders from `engine.url` (the report) sees the real file."""
    engine = sa.create_engine(url, connect_args={"read_only": True})

    @sa.event.listens_for(engine, "do_connect")
    def _open(dialect, conn_rec, cargs, cparams):
        cparams["database"] = str(path)

    return engine


def _holder(message: str) -> str | None:
    """'PID 1234' when DuckDB refused the file because another process holds it."""
    if "Could not set lock" not in message and "Conflicting lock" not in message:
        return None
    pid = message.split("PID ", 1)[1].split()[0].rstrip(").,") if "PID " in message else ""
    return f"PID {pid}" if pid else "another process"
