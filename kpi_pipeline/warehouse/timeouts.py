"""PostgreSQL timeouts: how long a run waits for the server, for a lock, for a statement.

Without them a server that accepts connections and never answers hangs `run` and
`scorecard` forever, and an analyst's open transaction on `marts.kpi_values` blocks the
daily run's `drop table` forever, queueing every later reader behind it.

Each setting comes from the warehouse URL's query (`?lock_timeout=5`), else the environment
(`KPI_PG_LOCK_TIMEOUT=5`), else its default; values are seconds, 0 means no limit:

| URL query           | environment                | default | bounds                       |
|---------------------|----------------------------|---------|------------------------------|
| `connect_timeout`   | `KPI_PG_CONNECT_TIMEOUT`   | 10      | opening a connection (>= 2)  |
| `lock_timeout`      | `KPI_PG_LOCK_TIMEOUT`      | 10      | one wait for a table lock    |
| `lock_retries`      | `KPI_PG_LOCK_RETRIES`      | 2       | more tries of a DDL statement|
| `statement_timeout` | `KPI_PG_STATEMENT_TIMEOUT` | 3600    | one statement (COPY too)     |

`lock_timeout` also bounds how long readers queue behind a run's waiting `drop table`: a
run's DDL (drop, alter, truncate, create index) gives up its place after `lock_timeout`,
lets readers through, and tries again (`lock_retries` times, pausing 1 s, 2 s, ...), each
try inside a savepoint so a failed try changes nothing. The run's own advisory locks
(writers of one table taking turns) are exempt: they wait for another run to commit, which
`statement_timeout` bounds.

A timeout becomes a `WarehouseTimeout` naming what waited for what: the host that did not
answer, or the table, the statement and the session holding the lock.
"""

from __future__ import annotations

import math
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kpi_pipeline.warehouse.errors import WarehouseError, WarehouseTimeout

# URL query parameter -> environment variable.
SETTINGS = {
    "connect_timeout": "KPI_PG_CONNECT_TIMEOUT",
    "lock_timeout": "KPI_PG_LOCK_TIMEOUT",
    "lock_retries": "KPI_PG_LOCK_RETRIES",
    "statement_timeout": "KPI_PG_STATEMENT_TIMEOUT",
}

# Statements that take an ACCESS EXCLUSIVE (or SHARE) lock on an existing table: those that
# wait on readers, and that readers queue behind while they wait.
_STRONG_LOCK_STATEMENT = re.compile(
    r"^\s*(drop|alter|truncate|lock|create\s+(unique\s+)?index|create\s+or\s+replace\s+view)\b",
    re.I,
)
# `schema.table`, either part quoted or not: the relations a statement may have waited on.
_QUALIFIED_NAME = re.compile(
    r'(?:"((?:[^"]|"")+)"|([a-z_][a-z0-9_$]*))\.(?:"((?:[^"]|"")+)"|([a-z_][a-z0-9_$]*))', re.I
)
_SAVEPOINT = "kpi_lock_wait"

# Who holds a lock on the relations named, oldest transaction first (not this session).
_LOCK_HOLDERS = """
select n.nspname, c.relname, l.mode, l.pid, a.usename, a.application_name, a.state,
       a.xact_start
from pg_locks l
join pg_class c on c.oid = l.relation
join pg_namespace n on n.oid = c.relnamespace
left join pg_stat_activity a on a.pid = l.pid
where l.granted and l.pid <> %(self)s
  and l.relation = any(select to_regclass(name) from unnest(%(names)s::text[]) as name)
order by a.xact_start nulls last, l.pid
"""


@dataclass(frozen=True)
class PostgresTimeouts:
    """Seconds to wait (0: no limit) and how many more tries a DDL statement gets."""

    connect_s: float = 10
    lock_s: float = 10
    lock_retries: int = 2
    statement_s: float = 3600

    @classmethod
    def from_settings(
        cls, query: Mapping[str, Any], environ: Mapping[str, str]
    ) -> PostgresTimeouts:
        """From the URL `query` first, then `environ`, then the defaults."""
        values: dict[str, Any] = {}
        fields = {
            "connect_timeout": "connect_s",
            "lock_timeout": "lock_s",
            "lock_retries": "lock_retries",
            "statement_timeout": "statement_s",
        }
        for name, variable in SETTINGS.items():
            if name in query:
                raw, source = query[name], f"?{name}= in the warehouse URL"
            elif environ.get(variable):
                raw, source = environ[variable], variable
            else:
                continue
            if isinstance(raw, tuple):  # a parameter given twice: the last wins
                raw = raw[-1]
            values[fields[name]] = _parse(str(raw), source, whole=name == "lock_retries")
        return cls(**values)

    @property
    def connect_args(self) -> dict[str, Any]:
        """psycopg keyword arguments: libpq's connect timeout (whole seconds, at least 2)."""
        if self.connect_s <= 0:
            return {}
        return {"connect_timeout": max(2, math.ceil(self.connect_s))}

    @property
    def server_options(self) -> str:
        """`options` for the server: the session's lock and statement timeouts (in ms)."""
        return (
            f"-c lock_timeout={round(self.lock_s * 1000)} "
            f"-c statement_timeout={round(self.statement_s * 1000)}"
        )


def _parse(raw: str, source: str, whole: bool) -> float:
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if value < 0 or not math.isfinite(value):
        wanted = "a whole number, 0 or more" if whole else "a number of seconds, 0 for no limit"
        raise WarehouseError(f"{source}={raw!r} is not {wanted}")
    return value


def install(engine: Engine, timeouts: PostgresTimeouts) -> None:
    """Explain connect timeouts; retry DDL that timed out on a lock; name lock holders."""
    connect_params: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect, conn_rec, cargs, cparams):
        import psycopg

        try:
            raw = dialect.connect(*cargs, **cparams)
        except psycopg.errors.ConnectionTimeout:
            where = f"{cparams.get('host') or 'localhost'}:{cparams.get('port') or 5432}"
            raise WarehouseTimeout(
                f"PostgreSQL at {where} (database {cparams.get('dbname')}) did not answer "
                f"within {timeouts.connect_args['connect_timeout']} s (connect_timeout): check "
                "that the warehouse URL names the server's host and port and that it is up, or "
                "wait longer with KPI_PG_CONNECT_TIMEOUT=SECONDS"
            ) from None
        connect_params[raw] = (cargs, cparams)
        return raw

    def execute(cursor, statement: str, parameters) -> bool:
        import psycopg

        retries = timeouts.lock_retries if _STRONG_LOCK_STATEMENT.match(statement) else 0
        # A savepoint makes a failed try undoable without losing the transaction.
        savepoint = retries > 0 and not cursor.connection.autocommit
        for attempt in range(retries + 1):
            if savepoint:
                cursor.execute(f"savepoint {_SAVEPOINT}")
            try:
                cursor.execute(statement, parameters)
            except psycopg.errors.LockNotAvailable:
                if savepoint:
                    cursor.execute(f"rollback to savepoint {_SAVEPOINT}")
                if attempt < retries:
                    time.sleep(attempt + 1)  # readers queued behind this statement go first
                    continue
                holders = _lock_holders(cursor.connection, statement, connect_params)
                raise WarehouseTimeout(
                    lock_timeout_message(statement, holders, attempt + 1, timeouts.lock_s)
                ) from None
            except psycopg.errors.QueryCanceled as exc:
                if "statement timeout" not in str(exc):
                    raise
                raise WarehouseTimeout(
                    f"`{_head(statement)}` ran longer than {timeouts.statement_s:g} s "
                    "(statement_timeout) and was cancelled, changing nothing: if it needs "
                    "longer, raise KPI_PG_STATEMENT_TIMEOUT (seconds, 0 for no limit)"
                ) from None
            if savepoint:
                cursor.execute(f"release savepoint {_SAVEPOINT}")
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    @sa.event.listens_for(engine, "do_execute")
    def do_execute(cursor, statement, parameters, context):
        return execute(cursor, statement, parameters)

    @sa.event.listens_for(engine, "do_execute_no_params")
    def do_execute_no_params(cursor, statement, context):
        return execute(cursor, statement, None)


@dataclass(frozen=True)
class LockHolder:
    relation: str
    mode: str
    pid: int
    user: str | None
    application: str | None
    state: str | None
    xact_start: Any


def _lock_holders(raw, statement: str, connect_params) -> list[LockHolder]:
    """Sessions holding locks on the tables `statement` names, looked up on a side connection
    (this one may be in an aborted transaction). Empty when that lookup itself fails."""
    import psycopg

    names = [
        f'"{(m[0] or m[1]).replace(chr(34), chr(34) * 2)}".'
        f'"{(m[2] or m[3]).replace(chr(34), chr(34) * 2)}"'
        for m in _QUALIFIED_NAME.findall(statement)
    ]
    known = connect_params.get(raw)
    if not names or known is None:
        return []
    cargs, cparams = known
    try:
        with psycopg.connect(
            *cargs, **{**cparams, "connect_timeout": 5, "autocommit": True}
        ) as side:
            side.execute("set statement_timeout = 5000")
            rows = side.execute(
                _LOCK_HOLDERS, {"self": raw.info.backend_pid, "names": names}
            ).fetchall()
    except psycopg.Error:
        return []
    return [LockHolder(f"{row[0]}.{row[1]}", *row[2:]) for row in rows]


def lock_timeout_message(
    statement: str, holders: list[LockHolder], tries: int, lock_s: float
) -> str:
    """One line: the table, who holds it, what waited how long, and what to do."""
    waited = f"{tries} × {lock_s:g} s" if tries > 1 else f"{lock_s:g} s"
    settings = "KPI_PG_LOCK_TIMEOUT and KPI_PG_LOCK_RETRIES set how long a run waits"
    if not holders:
        return (
            f"`{_head(statement)}` waited {waited} (lock_timeout) for a lock another session "
            f"held and stopped, changing nothing: re-run it; {settings}"
        )
    first = holders[0]
    since = f" since {first.xact_start:%Y-%m-%d %H:%M:%S%z}" if first.xact_start else ""
    who = ", ".join(
        part
        for part in (
            f"PostgreSQL backend pid {first.pid}",
            f"user {first.user}" if first.user else "",
            f"application {first.application!r}" if first.application else "",
            f"{first.state}{since}" if first.state else "",
        )
        if part
    )
    others = len({h.pid for h in holders}) - 1
    more = f"; {others} more session(s) hold locks on it too" if others > 0 else ""
    return (
        f"{first.relation}: another session holds a lock on it ({first.mode} by {who}{more}), "
        f"so this run's `{_head(statement)}` waited {waited} (lock_timeout) and stopped, "
        f"changing nothing: end that session's transaction (or `select "
        f"pg_terminate_backend({first.pid})`) and re-run; {settings}"
    )


def _head(statement: str, limit: int = 100) -> str:
    """The statement on one line, cut to `limit` characters."""
    flat = " ".join(statement.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 1]}…"
