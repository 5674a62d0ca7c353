"""PostgreSQL timeouts: a server that never answers, a reader holding a lock, a slow statement.

Each ends in a `WarehouseTimeout` (one line from the CLI) within the configured time, never
in a hang.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError, WarehouseTimeout
from kpi_pipeline.warehouse.timeouts import PostgresTimeouts


@pytest.mark.parametrize(
    ("query", "environ", "expected"),
    [
        # Nothing set: the defaults.
        ({}, {}, PostgresTimeouts(connect_s=10, lock_s=10, lock_retries=2, statement_s=3600)),
        # The environment sets what the URL does not.
        (
            {},
            {"KPI_PG_LOCK_TIMEOUT": "1.5", "KPI_PG_STATEMENT_TIMEOUT": "0"},
            PostgresTimeouts(lock_s=1.5, statement_s=0),
        ),
        # The URL wins over the environment (a parameter given twice: the last one).
        (
            {"lock_timeout": ("3", "4"), "connect_timeout": "2"},
            {"KPI_PG_LOCK_TIMEOUT": "1", "KPI_PG_LOCK_RETRIES": "0"},
            PostgresTimeouts(connect_s=2, lock_s=4, lock_retries=0),
        ),
    ],
    ids=["defaults", "environment", "url-wins"],
)
def test_settings_come_from_the_url_then_the_environment_then_the_defaults(
    query, environ, expected
):
    assert PostgresTimeouts.from_settings(query, environ) == expected


def test_settings_reach_the_server_in_milliseconds_and_libpq_in_whole_seconds():
    timeouts = PostgresTimeouts(connect_s=0.5, lock_s=1.5, statement_s=0)
    # libpq waits at least 2 s; 0 ms means no limit on the server.
    assert timeouts.connect_args == {"connect_timeout": 2}
    assert timeouts.server_options == "-c lock_timeout=1500 -c statement_timeout=0"
    assert PostgresTimeouts(connect_s=0).connect_args == {}


@pytest.mark.parametrize(
    ("query", "environ", "message"),
    [
        (
            {"lock_timeout": "soon"},
            {},
            "?lock_timeout= in the warehouse URL='soon' is not a number of seconds, 0 for no limit",
        ),
        ({}, {"KPI_PG_LOCK_RETRIES": "1.5"}, "KPI_PG_LOCK_RETRIES='1.5' is not a whole number"),
        ({}, {"KPI_PG_CONNECT_TIMEOUT": "-1"}, "KPI_PG_CONNECT_TIMEOUT='-1' is not a number"),
    ],
    ids=["url-word", "retries-fraction", "negative"],
)
def test_a_setting_that_is_not_a_duration_is_refused_by_name(query, environ, message):
    with pytest.raises(WarehouseError) as error:
        PostgresTimeouts.from_settings(query, environ)
    assert str(error.value).startswith(message)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


@pytest.mark.parametrize("command", [["scorecard"], ["run", "--date", "2026-08-03"]])
def test_a_server_that_never_answers_fails_the_command_within_connect_timeout(
    silent_server, command, tmp_path
):
    env = {
        **os.environ,
        "KPI_WAREHOUSE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/kpi",
        "KPI_PG_CONNECT_TIMEOUT": "2",
    }
    env.pop("DAGSTER_HOME", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # without a connect timeout the command would hang here
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"kpi-pipeline: PostgreSQL at 127.0.0.1:{silent_server} (database kpi) did not "
        "answer within 2 s (connect_timeout): check that the warehouse URL names the "
        "server's host and port and that it is up, or wait longer with "
        "KPI_PG_CONNECT_TIMEOUT=SECONDS"
    ]
    # It waited the 2 s, then stopped (the rest is Python starting up and importing).
    assert 2 <= elapsed < 30


@pytest.fixture
def analyst(postgres_url) -> Iterator[psycopg.Connection]:
    """An analyst's session: psql-like, in a transaction that stays open."""
    parsed = sa.engine.make_url(postgres_url)
    conn = psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        dbname=parsed.database,
        application_name="analyst_notebook",
    )
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


SPEC = TableSpec("marts", "kpi_values", (("kpi_id", "text"), ("value", "double")), "t")


def test_ddl_waits_lock_timeout_per_try_then_names_the_table_and_the_holder(
    postgres_url, analyst, monkeypatch
):
    monkeypatch.setenv("KPI_PG_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("KPI_PG_LOCK_RETRIES", "1")
    wh = Warehouse.from_url(postgres_url, "acme")
    try:
        wh.ensure_table(SPEC)
        analyst.execute("lock table acme_marts.kpi_values in access share mode")
        pid = analyst.info.backend_pid
        started = time.monotonic()
        with pytest.raises(WarehouseTimeout) as error, wh.transaction() as conn:
            conn.exec_driver_sql(f"drop table {wh.relation(SPEC)}")
        elapsed = time.monotonic() - started
        # Two tries of 1 s with a 1 s pause between them (readers go first meanwhile).
        assert 3 <= elapsed < 6
        message = str(error.value)
        assert message.startswith(
            "acme_marts.kpi_values: another session holds a lock on it (AccessShareLock by "
            f"PostgreSQL backend pid {pid}, user postgres, application 'analyst_notebook', "
            "idle in transaction since "
        )
        assert message.endswith(
            "so this run's `drop table acme_marts.kpi_values` waited 2 × 1 s (lock_timeout) and "
            f"stopped, changing nothing: end that session's transaction (or `select "
            f"pg_terminate_backend({pid})`) and re-run; KPI_PG_LOCK_TIMEOUT and "
            "KPI_PG_LOCK_RETRIES set how long a run waits"
        )
        # Once the analyst's transaction ends, the same statement goes through.
        analyst.rollback()
        with wh.transaction() as conn:
            conn.exec_driver_sql(f"drop table {wh.relation(SPEC)}")
        assert not wh.table_exists("marts", "kpi_values")
    finally:
        wh.dispose()


def test_a_retry_succeeds_when_the_reader_lets_go_between_tries(postgres_url, analyst, monkeypatch):
    monkeypatch.setenv("KPI_PG_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("KPI_PG_LOCK_RETRIES", "2")
    wh = Warehouse.from_url(postgres_url, "acme")
    try:
        wh.ensure_table(SPEC)
        analyst.execute("lock table acme_marts.kpi_values in access share mode")
        # The analyst commits 1.5 s in: during the first pause, before the second try.
        threading.Timer(1.5, analyst.rollback).start()
        with wh.transaction() as conn:
            conn.exec_driver_sql("insert into acme_marts.kpi_values values ('kept', 1)")
            conn.exec_driver_sql(f"alter table {wh.relation(SPEC)} add column note text")
        # The failed first try was undone alone: the insert before it committed.
        rows = wh.read_frame("select kpi_id, value, note from acme_marts.kpi_values")
        assert rows.to_dict("records") == [{"kpi_id": "kept", "value": 1.0, "note": None}]
    finally:
        wh.dispose()


def test_a_statement_running_past_statement_timeout_is_cancelled_by_name(postgres_url, monkeypatch):
    monkeypatch.setenv("KPI_PG_STATEMENT_TIMEOUT", "0.5")
    wh = Warehouse.from_url(postgres_url)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseTimeout) as error:
            wh.read_frame("select pg_sleep(5)")
        assert time.monotonic() - started < 3
        assert str(error.value) == (
            "`select pg_sleep(5)` ran longer than 0.5 s (statement_timeout) and was cancelled, "
            "changing nothing: if it needs longer, raise KPI_PG_STATEMENT_TIMEOUT (seconds, 0 "
            "for no limit)"
        )
    finally:
        wh.dispose()


def test_writers_of_one_table_still_wait_their_turn_past_lock_timeout(postgres_url, monkeypatch):
    # lock_timeout is for analysts' sessions; another run's write ends with its commit.
    monkeypatch.setenv("KPI_PG_LOCK_TIMEOUT", "0.5")
    wh = Warehouse.from_url(postgres_url, "acme")
    try:
        with wh.transaction() as first:
            wh.serialize_writes(first, "acme_marts.kpi_values")
            waited: list[float] = []

            def second_writer() -> None:
                started = time.monotonic()
                with wh.transaction() as second:
                    wh.serialize_writes(second, "acme_marts.kpi_values")
                    # lock_timeout is back to its setting for the rest of the transaction.
                    shown = second.execute(sa.text("show lock_timeout")).scalar_one()
                    assert shown == "500ms"
                waited.append(time.monotonic() - started)

            thread = threading.Thread(target=second_writer)
            thread.start()
            time.sleep(2)
        thread.join(timeout=10)
        assert len(waited) == 1 and waited[0] >= 1.9
    finally:
        wh.dispose()


def test_readers_never_block_the_daily_run_and_a_writer_lock_fails_it_within_the_timeout(
    postgres_url, analyst, tmp_path, monkeypatch
):
    # Imported here: it loads the whole Dagster definitions, which only this test needs.
    from demo_project import FIRST_DAY, LAST_DAY, DemoProject, step_failures

    from kpi_pipeline.runs import run_days
    from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG

    project = DemoProject.create(tmp_path, postgres_url)
    started = time.monotonic()
    first = project.run()
    unblocked = time.monotonic() - started
    assert first.success, step_failures(first)

    # An analyst's open transaction reading the marts (a share lock, as any select takes).
    analyst.execute("lock table demo_marts.kpi_values in access share mode")
    monkeypatch.setenv("KPI_PG_LOCK_TIMEOUT", "1")
    monkeypatch.setenv("KPI_PG_LOCK_RETRIES", "1")
    # Neither an incremental run nor a full refresh waits for it: the marts are published
    # by deleting and inserting rows in one transaction, never by dropping a table.
    incremental = project.run()
    assert incremental.success, step_failures(incremental)
    refresh = run_days(
        project.plan_path,
        FIRST_DAY,
        LAST_DAY,
        warehouse_url=postgres_url,
        tags={FULL_REFRESH_TAG: "1"},
    )
    assert refresh.success, step_failures(refresh)
    analyst.rollback()

    # A session locking the table against writes (SHARE mode: a `create index`, a hand
    # `lock table`) is waited for at most the lock timeout, with its holder named.
    analyst.execute("lock table demo_marts.kpi_values in share mode")
    before = analyst.execute("select count(*) from demo_marts.kpi_values").fetchone()
    started = time.monotonic()
    blocked = run_days(
        project.plan_path,
        FIRST_DAY,
        LAST_DAY,
        warehouse_url=postgres_url,
        tags={FULL_REFRESH_TAG: "1"},
    )
    elapsed = time.monotonic() - started

    assert not blocked.success
    failures = step_failures(blocked)
    assert list(failures) == ["publish_marts"]
    message = failures["publish_marts"]
    assert (
        "demo_marts.kpi_values: another session holds a lock on it (ShareLock by "
        f"PostgreSQL backend pid {analyst.info.backend_pid}, user postgres, application "
        "'analyst_notebook', idle in transaction since "
    ) in message
    # A row write is not retried (only statements taking a table's exclusive lock are).
    assert "waited 1 s (lock_timeout) and stopped, changing nothing" in message
    # Bounded: the wait on top of at most a whole run (noisy shared machine).
    assert elapsed < 1.5 * unblocked + 15
    # The reader still sees the previous run's rows.
    count = analyst.execute("select count(*) from demo_marts.kpi_values").fetchone()
    assert count == before and count is not None and count[0] > 0
