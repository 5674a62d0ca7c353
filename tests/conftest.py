"""PostgreSQL for the tests that need a server: one database per test run, emptied between tests.

The server comes from `KPI_TEST_POSTGRES_URL` (default: the local trust-auth server at
127.0.0.1:5432, user postgres). Unreachable, the tests skip with a message saying how to
point them at one, unless `KPI_REQUIRE_POSTGRES=1` (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class PostgresServer:
    """The test server, reached through an admin URL, and what this test run created there."""

    admin_url: str
    run_token: str
    databases: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(_conninfo(self.admin_url), autocommit=True, connect_timeout=5)

    def url_for(self, database: str, user: str | None = None) -> str:
        url = make_url(self.admin_url).set(database=database, drivername="postgresql+psycopg")
        if user is not None:
            url = url.set(username=user, password=None)
        return url.render_as_string(hide_password=False)

    def create_database(self) -> str:
        name = f"kpi_test_{self.run_token}_{len(self.databases)}"
        with self._admin() as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )

    def empty_database(self, name: str) -> None:
        """Drop every schema but PostgreSQL's own and `public` (cheaper than a new database)."""
        url = self.url_for(name).replace("postgresql+psycopg", "postgresql")
        with psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=5) as conn:
            schemas = conn.execute(
                "select nspname from pg_namespace where nspname not like 'pg\\_%' "
                "and nspname not in ('information_schema', 'public')"
            ).fetchall()
            for (schema,) in schemas:
                conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(schema)))

    def create_role(self, stem: str) -> str:
        """A LOGIN role (trust auth: no password) unique to this run."""
        name = f"{stem}_{self.run_token}"
        with self._admin() as conn:
            conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
        self.roles.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.databases:
            self.drop_database(name)
        with self._admin() as conn:
            for role in self.roles:
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _conninfo(url: str) -> str:
    parsed = make_url(url)
    parts = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The server for this test run; every database and role it created is dropped at the end."""
    url = os.environ.get("KPI_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        message = (
            f"PostgreSQL is unreachable at {shown} ({str(exc).strip().splitlines()[0]}); "
            "set KPI_TEST_POSTGRES_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB to a "
            "server where that user may create databases and roles"
        )
        if os.environ.get("KPI_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"KPI_REQUIRE_POSTGRES=1 but {message}", pytrace=False)
        pytest.skip(message)
    server = PostgresServer(admin_url=url, run_token=uuid.uuid4().hex[:10])
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> str:
    """This test run's own database, created once and dropped with the session."""
    return postgres_server.create_database()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_database: str) -> Iterator[str]:
    """A SQLAlchemy URL to this run's database, emptied before and after the test (every
    schema the test created is dropped), so each test starts from a brand-new warehouse."""
    url = postgres_server.url_for(postgres_database)
    postgres_server.empty_database(postgres_database)
    try:
        yield url
    finally:
        postgres_server.empty_database(postgres_database)


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path) -> str:
    """Each warehouse engine in turn: a DuckDB file, then a fresh PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    return request.getfixturevalue("postgres_url")
