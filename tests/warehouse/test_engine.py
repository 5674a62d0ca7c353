"""Partition replace is all-or-nothing and the bulk paths keep every value, on both engines."""

import datetime as dt
import math
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import (
    Warehouse,
    WarehouseBusyError,
    WarehouseError,
    create_warehouse_engine,
    validate_identifier,
)

SPEC = TableSpec(
    "raw",
    "things",
    (("date", "date"), ("name", "text"), ("n", "bigint"), ("x", "double")),
    grain="t",
)

# Every declared type, and strings that break naive CSV or SQL: quotes, separators, line
# breaks, backslashes, COPY's own end-of-data (\.) and null (\N) markers.
TRICKY = TableSpec(
    "raw",
    "tricky",
    (
        ("id", "integer"),
        ("label", "text"),
        ("day", "date"),
        ("seen_at", "timestamp"),
        ("count", "bigint"),
        ("share", "double"),
        ("flag", "boolean"),
    ),
    grain="one row per id",
)
TRICKY_LABELS = [
    'say "hi", then leave',
    "two\nlines\r\nand a tab\t",
    "C:\\path\\n",
    "\\.",
    "\\N",
    "",
    None,
    "'); drop table raw.tricky; --",
    "é€漢字🙂",
]


def _frame(day: str, names: list[str], n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime([day] * len(names)).astype("datetime64[s]"),
            "name": names,
            "n": [n] * len(names),
            "x": [0.1] * len(names),
        }
    )


@pytest.fixture
def warehouse(warehouse_url):
    wh = Warehouse.from_url(warehouse_url)
    wh.ensure_table(SPEC)
    yield wh
    wh.dispose()


def _rows(wh: Warehouse, table: str = "raw.things", order: str = "date, name") -> list[tuple]:
    frame = wh.read_frame(f"select * from {table} order by {order}")
    return list(frame.itertuples(index=False, name=None))


def test_replace_rows_swaps_only_the_partition(warehouse):
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(
            conn, SPEC, pd.concat([_frame("2026-01-01", ["a"], 1), _frame("2026-01-02", ["b"], 2)])
        )
    with warehouse.transaction() as conn:
        warehouse.replace_rows(
            conn, SPEC, _frame("2026-01-02", ["c", "d"], 3), "date = :d", {"d": dt.date(2026, 1, 2)}
        )
    assert _rows(warehouse) == [
        (dt.date(2026, 1, 1), "a", 1, 0.1),
        (dt.date(2026, 1, 2), "c", 3, 0.1),
        (dt.date(2026, 1, 2), "d", 3, 0.1),
    ]


def test_a_failure_inside_the_transaction_keeps_the_previous_rows(warehouse):
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, SPEC, _frame("2026-01-01", ["a"], 1))
    with pytest.raises(RuntimeError, match="disk full"), warehouse.transaction() as conn:
        warehouse.replace_rows(
            conn, SPEC, _frame("2026-01-01", ["z"], 9), "date = :d", {"d": dt.date(2026, 1, 1)}
        )
        raise RuntimeError("disk full")  # after the delete and the insert, before commit
    assert _rows(warehouse) == [(dt.date(2026, 1, 1), "a", 1, 0.1)]


def test_a_frame_missing_a_column_is_refused(warehouse):
    with (
        pytest.raises(WarehouseError, match=r"raw.things: frame lacks columns \['x'\]"),
        warehouse.transaction() as conn,
    ):
        warehouse.bulk_insert(conn, SPEC, _frame("2026-01-01", ["a"], 1).drop(columns="x"))


def test_a_value_that_does_not_fit_its_column_names_the_column(warehouse):
    frame = _frame("2026-01-01", ["a"], 1).assign(n=["many"])
    with (
        pytest.raises(WarehouseError, match=r"raw.things.n: values do not fit the declared bigint"),
        warehouse.transaction() as conn,
    ):
        warehouse.bulk_insert(conn, SPEC, frame)
    assert _rows(warehouse) == []


def test_every_type_and_awkward_string_survives_the_bulk_path(warehouse):
    # COPY's CSV and DuckDB's Arrow scan must both keep '' apart from NULL, keep line breaks
    # and quotes, store SQL-looking text as text, and turn NaN into NULL.
    n = len(TRICKY_LABELS)
    frame = pd.DataFrame(
        {
            "id": range(n),
            "label": TRICKY_LABELS,
            "day": [dt.date(2024, 2, 29)] * (n - 1) + [None],
            "seen_at": pd.to_datetime(["2026-03-29 01:30:00.123456+00:00"] * n, utc=True),
            "count": [2**62] + [-1] * (n - 1),
            "share": [0.1 + 0.2, math.nan, 1e-300, -0.0, 5e-324, 1.0, 2.0, 3.0, 4.0],
            "flag": [True, False, None, True, False, True, False, True, False],
        }
    )
    warehouse.ensure_table(TRICKY)
    with warehouse.transaction() as conn:
        assert warehouse.bulk_insert(conn, TRICKY, frame) == n
    got = warehouse.read_frame("select * from raw.tricky order by id")
    assert [None if pd.isna(v) else v for v in got["label"]] == TRICKY_LABELS
    assert (
        str(got["day"].iloc[0])[:10] == "2024-02-29"
    )  # a date on one engine, Timestamp on the other
    assert got["day"].isna().tolist() == [False] * (n - 1) + [True]
    at = pd.Timestamp(got["seen_at"].iloc[0])
    assert at.tz_convert("UTC") == pd.Timestamp("2026-03-29 01:30:00.123456", tz="UTC")
    assert got["count"].tolist() == [2**62] + [-1] * (n - 1)
    assert got["share"].iloc[0] == 0.1 + 0.2  # exactly the same double, not a rounded print
    assert math.isnan(got["share"].iloc[1])  # stored as NULL, read back as missing
    assert got["share"].iloc[2:5].tolist() == [1e-300, -0.0, 5e-324]
    assert got["flag"].tolist()[:2] == [True, False] and pd.isna(got["flag"].iloc[2])
    assert warehouse.table_exists("raw", "things")  # the SQL-looking label dropped nothing


def test_a_stream_of_frames_loads_in_chunks(warehouse):
    # 7 + 5 rows in chunks of 3: chunk boundaries inside and across frames lose no row.
    first = _frame("2026-01-01", [f"a{i}" for i in range(7)], 1)
    second = _frame("2026-01-02", [f"b{i}" for i in range(5)], 2)
    with warehouse.transaction() as conn:
        loaded = warehouse.bulk_insert(conn, SPEC, iter([first, second]), chunk_rows=3)
    assert loaded == 12
    rows = _rows(warehouse)
    assert [r[1] for r in rows] == sorted(f"a{i}" for i in range(7)) + sorted(
        f"b{i}" for i in range(5)
    )


def test_postgres_loads_through_copy_not_inserts(postgres_url):
    # pg_stat_statements is not available everywhere; the server's own counters are: a COPY
    # of 1,000 rows runs no INSERT statement at all, which `to_sql` would.
    wh = Warehouse.from_url(postgres_url)
    try:
        wh.ensure_table(SPEC)
        seen: list[str] = []
        sa.event.listen(
            wh.engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0].lower())
        )
        frame = _frame("2026-01-01", [f"n{i}" for i in range(1000)], 1)
        with wh.transaction() as conn:
            wh.replace_rows(conn, SPEC, frame, "date = :d", {"d": dt.date(2026, 1, 1)})
        assert "insert" not in seen
        assert len(_rows(wh)) == 1000
    finally:
        wh.dispose()


def test_a_second_claim_on_the_same_postgres_partition_fails_at_once_naming_the_holder(
    postgres_url,
):
    wh = Warehouse.from_url(postgres_url)
    try:
        wh.ensure_table(SPEC)
        scope = {"d": dt.date(2026, 1, 2)}
        with wh.transaction() as holder:
            wh.claim_partition(holder, SPEC, scope)
            pid = holder.exec_driver_sql("select pg_backend_pid()").scalar_one()
            with wh.transaction() as other:
                with pytest.raises(WarehouseBusyError) as caught:
                    wh.claim_partition(other, SPEC, scope)
                # Another day of the same table is not this partition: no conflict.
                wh.claim_partition(other, SPEC, {"d": dt.date(2026, 1, 3)})
        message = str(caught.value)
        assert "raw.things: another run is replacing the same partition (d=2026-01-02)" in message
        assert f"backend pid {pid}" in message
        assert "changing anything" in message
        # Released at commit: the partition can be claimed again.
        with wh.transaction() as again:
            wh.claim_partition(again, SPEC, scope)
    finally:
        wh.dispose()


def test_writers_of_other_postgres_partitions_take_turns_instead_of_failing(postgres_url):
    # Another day of the same table is not a conflict: the second writer waits for the first
    # to commit (so overlapping ranges can never duplicate rows), then both days are there.
    wh = Warehouse.from_url(postgres_url)
    try:
        wh.ensure_table(SPEC)
        errors: list[BaseException] = []

        def second_writer():
            try:
                with wh.transaction() as conn:
                    wh.replace_rows(
                        conn, SPEC, _frame("2026-01-02", ["b"], 2), "date = :d",
                        {"d": dt.date(2026, 1, 2)},
                    )  # fmt: skip
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        with wh.transaction() as first:
            wh.replace_rows(
                first, SPEC, _frame("2026-01-01", ["a"], 1), "date = :d", {"d": dt.date(2026, 1, 1)}
            )
            thread = threading.Thread(target=second_writer)
            thread.start()
            waiting = (
                "select count(*) as n from pg_locks where locktype = 'advisory' and not granted "
                "and database = (select oid from pg_database where datname = current_database())"
            )
            for _ in range(300):  # bounded poll until the server shows the second one waiting
                if wh.read_frame(waiting)["n"].iloc[0] == 1:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the second writer never waited for the first")
            assert _rows(wh) == []  # nothing committed yet by either
        thread.join(timeout=60)
        assert not errors
        assert [r[1] for r in _rows(wh)] == ["a", "b"]
    finally:
        wh.dispose()


def test_a_duckdb_file_held_by_another_process_is_reported_with_its_pid(tmp_path):
    path = tmp_path / "kpi.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute('select 1');"
            "print('ready', flush=True); sys.stdin.readline()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        wh = Warehouse.from_url(f"duckdb:///{path}")
        with pytest.raises(WarehouseBusyError) as caught:
            wh.ensure_table(SPEC)
        assert f"is in use by another process (PID {holder.pid})" in str(caught.value)
        assert "one writing process at a time" in str(caught.value)
    finally:
        holder.communicate("done\n", timeout=30)
    wh.ensure_table(SPEC)  # the holder has gone: the file opens
    wh.dispose()


def test_a_duckdb_folder_is_created_on_first_use(tmp_path):
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'nested' / 'deeper' / 'w.duckdb'}")
    wh.ensure_table(SPEC)
    wh.dispose()
    assert (tmp_path / "nested" / "deeper" / "w.duckdb").exists()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "psycopg"),
        ("postgres://u@h/db", "psycopg"),
        ("postgres+psycopg://u@h/db", "psycopg"),
        ("postgresql+psycopg://u@h/db", "psycopg"),
    ],
)
def test_postgres_urls_use_psycopg_3(url, driver):
    assert create_warehouse_engine(url).dialect.driver == driver


def test_another_postgres_driver_is_refused_with_the_url_to_use():
    with pytest.raises(WarehouseError, match=r"driver 'psycopg2'.*postgresql\+psycopg://"):
        create_warehouse_engine("postgresql+psycopg2://u@h/db")


@pytest.mark.parametrize(
    "name",
    ["analyst; drop table marts.kpi_scores", 'a"b', "Analyst", "1abc", "a" * 64, "", "a b"],
)
def test_identifiers_from_outside_must_be_plain(name):
    with pytest.raises(WarehouseError, match="is not a plain SQL identifier"):
        validate_identifier(name, "role name")


def test_plain_identifiers_pass():
    assert validate_identifier("kpi_reader_2") == "kpi_reader_2"
