"""Safe writes under real failure: a load SIGKILLed mid-COPY, and two runs of one partition.

Each writer is a separate process, as in production: the test pauses it at a known point
(it waits on its stdin), checks the state from outside, then kills or releases it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from demo_project import FIRST_DAY, LAST_DAY, DemoProject, step_failures

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Match

# A worker that replaces the day 2026-01-02 of raw.loads with `rows` new rows, streamed in
# two frames: after the first has gone into the load it says "loading" and waits for a line
# on stdin before the second. Killed there, it dies in the middle of COPY (PostgreSQL) or of
# the chunked Arrow insert (DuckDB), inside its transaction.
LOAD_WORKER = textwrap.dedent(
    """
    import datetime as dt, sys
    import pandas as pd
    from kpi_pipeline.lib.tables import TableSpec
    from kpi_pipeline.warehouse.engine import Warehouse
    from kpi_pipeline.warehouse.partitions import Match

    url, label, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = TableSpec("raw", "loads", (("day", "date"), ("label", "text"), ("n", "bigint")), "t")
    def frame(start, stop):
        return pd.DataFrame({"day": [dt.date(2026, 1, 2)] * (stop - start), "label": label,
                             "n": range(start, stop)})
    def frames():
        yield frame(0, rows // 2)
        print("loading", flush=True)
        sys.stdin.readline()
        yield frame(rows // 2, rows)
    wh = Warehouse.from_url(url)
    wh.ensure_table(spec)
    with wh.transaction() as conn:
        if wh.is_postgres:
            print(conn.exec_driver_sql("select pg_backend_pid()").scalar_one(), flush=True)
        else:
            print(0, flush=True)
        wh.replace_rows(conn, spec, frames(), Match({"day": dt.date(2026, 1, 2)}))
    print("committed", flush=True)
    """
)
ROWS = 60_000


def _start_load(url: str, label: str, rows: int = ROWS) -> tuple[subprocess.Popen, int]:
    worker = subprocess.Popen(
        [sys.executable, "-c", LOAD_WORKER, url, label, str(rows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    backend_pid = int(worker.stdout.readline())
    assert worker.stdout.readline().strip() == "loading"
    return worker, backend_pid


def _finish(worker: subprocess.Popen) -> None:
    out, _ = worker.communicate("go\n", timeout=120)
    assert worker.returncode == 0 and out.strip() == "committed"


def _counts(url: str) -> dict[str, int]:
    wh = Warehouse.from_url(url)
    try:
        frame = wh.read_frame("select label, count(*) as n from raw.loads group by label")
        return dict(zip(frame["label"], frame["n"].astype(int), strict=True))
    finally:
        wh.dispose()


def _wait_until(condition, what: str, attempts: int = 300) -> None:
    """Poll `condition` (bounded: at most `attempts` x 0.1 s); not a timing assertion."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def _copy_progress(url: str, backend_pid: int) -> int | None:
    wh = Warehouse.from_url(url)
    try:
        frame = wh.read_frame(
            "select tuples_processed from pg_stat_progress_copy where pid = :pid",
            {"pid": backend_pid},
        )
        return None if frame.empty else int(frame["tuples_processed"].iloc[0])
    finally:
        wh.dispose()


def _backend_alive(url: str, backend_pid: int) -> bool:
    wh = Warehouse.from_url(url)
    try:
        sql = "select count(*) as n from pg_stat_activity where pid = :pid"
        return bool(wh.read_frame(sql, {"pid": backend_pid})["n"].iloc[0])
    finally:
        wh.dispose()


def test_sigkill_mid_load_leaves_the_warehouse_unchanged_and_the_next_run_is_correct(
    warehouse_url,
):
    first, backend_pid = _start_load(warehouse_url, "first", rows=10)
    _finish(first)
    assert _counts(warehouse_url) == {"first": 10}

    victim, backend_pid = _start_load(warehouse_url, "victim")
    if backend_pid:
        # PostgreSQL shows the COPY running and already holding rows of the first frame.
        _wait_until(
            lambda: (_copy_progress(warehouse_url, backend_pid) or 0) > 0,
            "the server to report COPY progress",
        )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    if backend_pid:
        # The server notices the dropped connection and rolls the transaction back.
        _wait_until(
            lambda: not _backend_alive(warehouse_url, backend_pid),
            "the killed client's backend to end",
        )

    # Unchanged: the previous 10 rows, none of the victim's (not even the first frame's).
    assert _counts(warehouse_url) == {"first": 10}

    second, _ = _start_load(warehouse_url, "second")
    _finish(second)
    assert _counts(warehouse_url) == {"second": ROWS}
    wh = Warehouse.from_url(warehouse_url)
    try:
        n = wh.read_frame("select n from raw.loads order by n")["n"].tolist()
    finally:
        wh.dispose()
    assert n == list(range(ROWS))  # every row once: no leftovers or duplicates


def test_a_second_run_of_the_same_partition_is_refused_while_the_first_writes(
    warehouse_url, tmp_path, monkeypatch
):
    project = DemoProject.create(tmp_path, warehouse_url)
    result = project.run()
    assert result.success, step_failures(result)
    traffic_before = project.read("select count(*) as n from raw.csv_traffic")["n"].iloc[0]

    # Another run holds the same days of raw.csv_traffic, part way through its write.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, warehouse_url, FIRST_DAY.isoformat(), LAST_DAY.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        # The loser must fail at once; should it wait on the holder's locks instead, a lock
        # timeout makes it fail (the holder only commits once the loser has returned).
        monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=30s")
        loser = project.run()
        monkeypatch.delenv("PGOPTIONS")
        assert not loser.success
        failures = step_failures(loser)
        message = next(iter(failures.values()))
        if warehouse_url.startswith("postgresql"):
            assert list(failures) == ["csv_exports"]
            assert "demo_raw.csv_traffic: another run is replacing the same partition" in message
            assert f"first_day={FIRST_DAY}, last_day={LAST_DAY}, source_id=ga4_export" in message
        else:
            assert f"is in use by another process (PID {holder.pid})" in message
        assert "re-run it when the other run has finished" in message
    finally:
        out, _ = holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0 and out.strip() == "committed"

    # No interleaving: the days hold exactly the winner's rows, none of the loser's.
    traffic = project.read("select * from raw.csv_traffic")
    assert set(traffic["file"]) == {"holder"}
    assert len(traffic) == 1

    # The loser, re-run once the winner has finished, is correct again.
    again = project.run()
    assert again.success, step_failures(again)
    after = project.read("select count(*) as n from raw.csv_traffic")["n"].iloc[0]
    assert after == traffic_before


def test_on_postgres_checking_a_table_does_not_wait_for_a_writer_of_it(postgres_url):
    # Every run checks its tables (`ensure_table`) before it claims its partition. That check
    # must not queue behind another run's open write of the table: a second run of the same
    # partition would wait instead of failing at once (and hang, if the first waits on it).
    spec = TableSpec(
        "raw",
        "loads",
        (("day", "date"), ("label", "text"), ("n", "bigint")),
        "t",
        indexes=(("day",),),
    )
    wh = Warehouse.from_url(postgres_url, "acme")
    try:
        wh.ensure_table(spec)
        with wh.transaction() as writer:
            frame = pd.DataFrame({"day": [dt.date(2026, 1, 2)], "label": ["w"], "n": [1]})
            wh.replace_rows(writer, spec, frame, Match({"day": dt.date(2026, 1, 2)}))
            with wh.transaction() as other:
                other.exec_driver_sql("set local lock_timeout = '5s'")  # fail, never hang
                wh.ensure_table(spec, other)
    finally:
        wh.dispose()


# Replaces the demo source's days (in the demo plan's own raw schema) with one marker row
# and waits before committing.
HOLDER = textwrap.dedent(
    """
    import datetime as dt, sys
    import pandas as pd
    from kpi_pipeline.sources.csv_export import CSV_TRAFFIC
    from kpi_pipeline.warehouse.engine import Warehouse
    from kpi_pipeline.warehouse.partitions import Days

    url = sys.argv[1]
    first, last = dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
    row = {name: None for name in CSV_TRAFFIC.column_names}
    row.update(source_id="ga4_export", date=first, source="holder", medium="x", campaign="x",
               landing_page="/", device="desktop", sessions=1, engaged_sessions=1,
               key_events=0.0, file="holder", line=1)
    wh = Warehouse.from_url(url, "demo")
    with wh.transaction() as conn:
        wh.replace_rows(conn, CSV_TRAFFIC, pd.DataFrame([row]), Days("ga4_export", first, last))
        print("holding", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
    """
)
