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
    read_frame_once,
    validate_identifier,
)
from kpi_pipeline.warehouse.partitions import Everything, Match

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
            conn, SPEC, _frame("2026-01-02", ["c", "d"], 3), Match({"date": dt.date(2026, 1, 2)})
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
            conn, SPEC, _frame("2026-01-01", ["z"], 9), Match({"date": dt.date(2026, 1, 1)})
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
            wh.replace_rows(conn, SPEC, frame, Match({"date": dt.date(2026, 1, 1)}))
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
        partition = Match({"date": dt.date(2026, 1, 2)})
        with wh.transaction() as holder:
            wh.claim_partition(holder, SPEC, partition.scope())
            pid = holder.exec_driver_sql("select pg_backend_pid()").scalar_one()
            with wh.transaction() as other:
                with pytest.raises(WarehouseBusyError) as caught:
                    wh.replace_rows(other, SPEC, _frame("2026-01-02", ["x"], 1), partition)
                # Another day of the same table is not this partition: no conflict.
                wh.claim_partition(other, SPEC, Match({"date": dt.date(2026, 1, 3)}).scope())
        message = str(caught.value)
        assert (
            "raw.things: another run is replacing the same partition (date=2026-01-02)" in message
        )
        assert f"backend pid {pid}" in message
        assert "changing anything" in message
        assert _rows(wh) == []  # the refused write inserted nothing
        # Released at commit: the partition can be claimed again.
        with wh.transaction() as again:
            wh.claim_partition(again, SPEC, partition.scope())
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
                        conn,
                        SPEC,
                        _frame("2026-01-02", ["b"], 2),
                        Match({"date": dt.date(2026, 1, 2)}),
                    )
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        with wh.transaction() as first:
            wh.replace_rows(
                first, SPEC, _frame("2026-01-01", ["a"], 1), Match({"date": dt.date(2026, 1, 1)})
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


def test_count_rows_counts_a_partition_grouped_or_not(warehouse):
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(
            conn,
            SPEC,
            pd.concat([_frame("2026-01-01", ["a"], 1), _frame("2026-01-02", ["b", "c"], 2)]),
        )
    day = Match({"date": dt.date(2026, 1, 2)})
    with warehouse.engine.connect() as conn:
        assert warehouse.count_rows(conn, SPEC, day) == {None: 2}
        assert warehouse.count_rows(conn, SPEC, day, by="name") == {"b": 1, "c": 1}
        assert warehouse.count_rows(conn, SPEC, Everything(), by="n") == {1: 1, 2: 2}
        assert warehouse.count_rows(conn, SPEC, Everything()) == {None: 3}
    with warehouse.transaction() as conn:
        warehouse.delete_rows(conn, SPEC, Everything())
    with warehouse.engine.connect() as conn:
        assert warehouse.count_rows(conn, SPEC, Everything()) == {}  # an empty table


# -- plan-scoped warehouses: every plan writes its own schemas ---------------------------


def test_an_unscoped_warehouse_uses_declared_schemas_and_a_plan_its_own(warehouse):
    assert warehouse.plan_id is None
    assert [warehouse.schema_name(s) for s in ("raw", "marts", "meta")] == ["raw", "marts", "meta"]
    assert warehouse.table_exists("raw", "things")  # the fixture's table, as declared
    acme = warehouse.for_plan("acme")
    assert acme.plan_id == "acme"
    assert [
        acme.schema_name(s) for s in ("raw", "plan", "staging", "intermediate", "marts", "meta")
    ] == ["acme_raw", "acme_plan", "acme_staging", "acme_intermediate", "acme_marts", "meta"]
    assert not acme.table_exists("raw", "things")  # `raw.things` is not acme's table
    assert acme.relation(SPEC) == acme.relation("raw", "things")
    assert acme.relation(SPEC).replace('"', "") == "acme_raw.things"


def test_two_plans_writing_one_declared_table_never_touch_each_others_rows(warehouse_url):
    unscoped = Warehouse.from_url(warehouse_url)
    acme, beta = Warehouse.from_url(warehouse_url, "acme"), unscoped.for_plan("beta")
    day = Match({"date": dt.date(2026, 1, 2)})
    try:
        acme.ensure_table(SPEC)
        beta.ensure_table(SPEC)
        with acme.transaction() as conn:
            both_days = pd.concat(
                [_frame("2026-01-01", ["a1"], 1), _frame("2026-01-02", ["a2"], 1)]
            )
            acme.replace_rows(conn, SPEC, both_days, Everything())
        with beta.transaction() as conn:
            beta.replace_rows(conn, SPEC, _frame("2026-01-02", ["b1", "b2"], 2), day)
        # acme replaces its 2026-01-02, the same declared table and partition as beta's.
        with acme.transaction() as conn:
            acme.replace_rows(conn, SPEC, _frame("2026-01-02", ["a3"], 3), day)
        assert [r[1] for r in _rows(acme, acme.relation(SPEC))] == ["a1", "a3"]
        assert [r[1] for r in _rows(beta, beta.relation(SPEC))] == ["b1", "b2"]
        # beta emptying its whole table leaves acme's rows alone.
        with beta.transaction() as conn:
            beta.replace_all(conn, SPEC, _frame("2026-01-03", [], 0))
        assert _rows(beta, beta.relation(SPEC)) == []
        assert [r[1] for r in _rows(acme, acme.relation(SPEC))] == ["a1", "a3"]
        with acme.engine.connect() as conn:
            assert acme.count_rows(conn, SPEC, day, by="name") == {"a3": 1}
        # Neither plan wrote the declared (unscoped) table.
        assert not unscoped.table_exists("raw", "things")
    finally:
        acme.dispose()
        unscoped.dispose()
    read = read_frame_once(
        warehouse_url, "select name from raw.things order by name", plan_id="acme"
    )
    assert read["name"].tolist() == ["a1", "a3"]


def test_on_postgres_one_plans_write_neither_waits_for_nor_blocks_anothers(postgres_url):
    # Partition claims and table write locks are keyed on the plan's physical table: acme
    # holding its 2026-01-02 does not stop beta from replacing its own 2026-01-02.
    acme = Warehouse.from_url(postgres_url, "acme")
    beta = acme.for_plan("beta")
    day = Match({"date": dt.date(2026, 1, 2)})
    try:
        acme.ensure_table(SPEC)
        beta.ensure_table(SPEC)
        with acme.transaction() as first:
            acme.replace_rows(first, SPEC, _frame("2026-01-02", ["a"], 1), day)
            with beta.transaction() as second:
                second.exec_driver_sql("set local lock_timeout = '20s'")  # fail, never hang
                beta.replace_rows(second, SPEC, _frame("2026-01-02", ["b"], 2), day)
            assert [r[1] for r in _rows(beta, beta.relation(SPEC))] == ["b"]
            # acme's own partition is still held, and the message names acme's table.
            with acme.transaction() as third, pytest.raises(WarehouseBusyError) as caught:
                acme.replace_rows(third, SPEC, _frame("2026-01-02", ["z"], 9), day)
        assert "acme_raw.things: another run is replacing the same partition (date=2026-01-02)" in (
            str(caught.value)
        )
        assert [r[1] for r in _rows(acme, acme.relation(SPEC))] == ["a"]
    finally:
        acme.dispose()


def test_plan_sql_names_the_plans_own_schemas():
    acme = Warehouse.from_url("duckdb:///:memory:", "acme")
    assert acme.plan_sql("select * from marts.kpi_scores") == "select * from acme_marts.kpi_scores"
    assert (
        acme.plan_sql("select * from staging.a join intermediate.b using (k) join plan.c using (k)")
        == "select * from acme_staging.a join acme_intermediate.b using (k) "
        "join acme_plan.c using (k)"
    )
    assert (
        acme.plan_sql("select * from {raw}.csv_traffic t join {plan}.sources s using (source_id)")
        == "select * from acme_raw.csv_traffic t join acme_plan.sources s using (source_id)"
    )
    # Already physical, shared, another plan's, or a column reference: left as written.
    for sql in (
        "select * from acme_marts.kpi_scores",
        "select * from demo_marts.kpi_scores",
        "select * from meta.plans",
        "select t.marts.x from t",
    ):
        assert acme.plan_sql(sql) == sql
    unscoped = Warehouse.from_url("duckdb:///:memory:")
    assert unscoped.plan_sql("select * from marts.kpi_scores") == "select * from marts.kpi_scores"
    assert unscoped.plan_sql("select * from {marts}.kpi_scores") == "select * from marts.kpi_scores"


def test_plan_sql_leaves_braces_that_are_not_schema_placeholders_alone():
    # Regular expressions (`\d{4}`) and DuckDB struct literals carry braces; only `{raw}`,
    # `{marts}`... are placeholders.
    acme = Warehouse.from_url("duckdb:///:memory:", "acme")
    sql = r"select * from marts.kpi_scores where regexp_matches(period_label, '^\d{4}-W\d{2}$')"
    assert acme.plan_sql(sql) == sql.replace("from marts.", "from acme_marts.")
    struct = "select {'kpi': kpi_id} as s from {marts}.kpi_scores"
    assert acme.plan_sql(struct) == "select {'kpi': kpi_id} as s from acme_marts.kpi_scores"


@pytest.mark.parametrize(
    "plan_id",
    ["Acme", "acme-eu", "1acme", "acme; drop schema acme_raw cascade", 'a"b', "a b", "a" * 64, ""],
)
def test_a_plan_id_that_is_not_a_plain_identifier_is_refused(plan_id):
    with pytest.raises(WarehouseError, match=r"plan id .* is not usable: lower-case letters"):
        Warehouse.from_url("duckdb:///:memory:", plan_id)
    with pytest.raises(WarehouseError, match=r"plan id .* is not usable: lower-case letters"):
        Warehouse.from_url("duckdb:///:memory:").for_plan(plan_id)


@pytest.mark.parametrize(
    "plan_id",
    [
        pytest.param("x" * 50 + "_intermediate", id="63-chars"),
        pytest.param("p" * 51, id="51-chars"),
    ],
)
def test_a_plan_id_whose_schema_names_exceed_63_characters_is_refused(plan_id):
    # PostgreSQL cuts names at 63 bytes: `x..._intermediate_raw` would be the schema
    # `x..._intermediate`, which is plan `x...`'s intermediate schema, and a 51-character
    # id's `_intermediate` would lose its last letter. The plan's schemas must be its own.
    with pytest.raises(WarehouseError, match="plan id"):
        Warehouse.from_url("duckdb:///:memory:", plan_id)
