"""Tables are declared once (`TableSpec`) and created or evolved from that declaration in the
plan's own schemas; only the shared `meta` schema has versioned migrations. On both engines."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.sources.csv_export import CSV_TRAFFIC
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError, sa_table
from kpi_pipeline.warehouse.migrations import HEAD, MIGRATIONS, current_version
from kpi_pipeline.warehouse.partitions import Days

PLAN = "acme"

# Every declared column type, so that each one is read back as its own declaration.
EVERY_TYPE = TableSpec(
    "raw",
    "every_type",
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
    indexes=(("day",),),
)
# information_schema's name for each declared type, per engine (PostgreSQL, DuckDB).
TYPE_NAMES = {
    "text": {"text", "VARCHAR"},
    "date": {"date", "DATE"},
    "bigint": {"bigint", "BIGINT"},
    "integer": {"integer", "INTEGER"},
    "double": {"double precision", "DOUBLE"},
    "boolean": {"boolean", "BOOLEAN"},
    "timestamp": {"timestamp with time zone", "TIMESTAMP WITH TIME ZONE"},
}

# A table as first released, then as declared today (two columns more).
SNAPSHOTS_V1 = TableSpec(
    "marts",
    "snapshots",
    (("run_id", "text"), ("kpi_id", "text"), ("value", "double")),
    grain="one row per run and kpi",
)
SNAPSHOTS_V2 = TableSpec(
    "marts",
    "snapshots",
    (*SNAPSHOTS_V1.columns, ("hold_reason", "text"), ("computed_at", "timestamp")),
    grain=SNAPSHOTS_V1.grain,
)


@pytest.fixture
def warehouse(warehouse_url):
    wh = Warehouse.from_url(warehouse_url, PLAN)
    yield wh
    wh.dispose()


def _columns(wh: Warehouse, schema: str, name: str) -> dict[str, str]:
    """Physical columns of `schema.name` and their information_schema types, in table order."""
    frame = wh.read_frame(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = :schema and table_name = :name order by ordinal_position",
        {"schema": schema, "name": name},
    )
    return dict(zip(frame["column_name"], frame["data_type"], strict=True))


def _changes(wh: Warehouse) -> list[tuple]:
    frame = wh.read_frame(
        "select schema_name, table_name, change, column_name, column_type "
        "from meta.schema_changes order by changed_at, column_name"
    )
    return sorted(
        (tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)),
        key=str,
    )


def _snapshots(run_ids: list[str], spec: TableSpec = SNAPSHOTS_V1) -> pd.DataFrame:
    frame = pd.DataFrame({"run_id": run_ids, "kpi_id": "conv", "value": [0.25] * len(run_ids)})
    for name in spec.column_names[len(SNAPSHOTS_V1.columns) :]:
        frame[name] = None
    return frame


def test_a_table_is_created_from_its_spec_in_the_plans_own_schema(warehouse):
    warehouse.ensure_table(EVERY_TYPE)

    columns = _columns(warehouse, "acme_raw", "every_type")
    assert list(columns) == EVERY_TYPE.column_names  # declared order
    for name, kind in EVERY_TYPE.columns:
        assert columns[name] in TYPE_NAMES[kind], name
    assert _columns(warehouse, "raw", "every_type") == {}  # not the declared schema itself
    assert warehouse.table_exists("raw", "every_type")
    assert _changes(warehouse) == [("acme_raw", "every_type", "create table", None, None)]
    if warehouse.is_postgres:
        indexes = warehouse.read_frame(
            "select indexname from pg_indexes where schemaname = 'acme_raw'"
        )["indexname"]
        assert "ix_every_type_day" in set(indexes)

    # Declared again: every type reads back as its declaration, so nothing changes.
    warehouse.ensure_table(EVERY_TYPE)
    assert list(_columns(warehouse, "acme_raw", "every_type")) == EVERY_TYPE.column_names
    assert len(_changes(warehouse)) == 1


def test_a_column_declared_later_is_added_to_the_existing_table_and_logged(warehouse):
    warehouse.ensure_table(SNAPSHOTS_V1)
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, SNAPSHOTS_V1, _snapshots(["run-0", "run-1"]))

    warehouse.ensure_table(SNAPSHOTS_V2)

    columns = _columns(warehouse, "acme_marts", "snapshots")
    assert list(columns) == SNAPSHOTS_V2.column_names
    for name, kind in SNAPSHOTS_V2.columns:
        assert columns[name] in TYPE_NAMES[kind], name
    kept = warehouse.read_frame(
        "select run_id, kpi_id, value, hold_reason, computed_at "
        "from acme_marts.snapshots order by run_id"
    )
    assert kept["run_id"].tolist() == ["run-0", "run-1"]
    assert kept["value"].tolist() == [0.25, 0.25]
    assert kept[["hold_reason", "computed_at"]].isna().all().all()  # new columns: null
    assert _changes(warehouse) == sorted(
        [
            ("acme_marts", "snapshots", "create table", None, None),
            ("acme_marts", "snapshots", "add column", "hold_reason", "text"),
            ("acme_marts", "snapshots", "add column", "computed_at", "timestamp"),
        ],
        key=str,
    )

    # The evolved table takes rows with the new columns; declaring it again changes nothing.
    new = _snapshots(["run-2"], SNAPSHOTS_V2).assign(
        hold_reason="holiday", computed_at=pd.Timestamp("2026-01-03T06:00:00Z")
    )
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, SNAPSHOTS_V2, new)
    reasons = warehouse.read_frame("select run_id, hold_reason from acme_marts.snapshots")
    assert reasons.set_index("run_id")["hold_reason"].isna().to_dict() == {
        "run-0": True,
        "run-1": True,
        "run-2": False,
    }
    warehouse.ensure_table(SNAPSHOTS_V2)
    assert len(_changes(warehouse)) == 3


def test_a_column_whose_type_differs_is_refused_with_a_message_naming_it(warehouse):
    warehouse.ensure_table(SNAPSHOTS_V1)
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, SNAPSHOTS_V1, _snapshots(["run-0"]))
    retyped = TableSpec(
        "marts",
        "snapshots",
        (("run_id", "text"), ("kpi_id", "text"), ("value", "text"), ("note", "text")),
        grain=SNAPSHOTS_V1.grain,
    )

    with pytest.raises(WarehouseError) as caught:
        warehouse.ensure_table(retyped)

    message = str(caught.value)
    assert "acme_marts.snapshots: column types differ from the declaration" in message
    assert any(f"(value is {found}, declared text)" in message for found in TYPE_NAMES["double"]), (
        message
    )
    assert "convert the column by hand" in message
    # Nothing changed: no cast, not even the new column, and the row is still there.
    assert list(_columns(warehouse, "acme_marts", "snapshots")) == SNAPSHOTS_V1.column_names
    assert warehouse.read_frame("select value from acme_marts.snapshots")["value"].tolist() == [
        0.25
    ]
    assert len(_changes(warehouse)) == 1  # the creation only


def test_migrate_is_idempotent_and_records_meta_schema_versions(warehouse_url):
    first = Warehouse.from_url(warehouse_url)
    try:
        assert current_version(first) == 0
        assert first.migrate() == list(range(1, HEAD + 1))
        assert current_version(first) == HEAD
        assert first.migrate() == []
    finally:
        first.dispose()
    # Another process (a plan's run) finds the meta schema migrated already.
    again = Warehouse.from_url(warehouse_url, PLAN)
    try:
        assert again.migrate() == []
        again.ensure_table(EVERY_TYPE)  # migrates first if needed: nothing to do
        versions = again.read_frame(
            "select version, description, applied_at from meta.schema_versions order by version"
        )
        assert versions["version"].tolist() == [m.version for m in MIGRATIONS]
        assert versions["description"].tolist() == [m.description for m in MIGRATIONS]
        assert versions["applied_at"].notna().all()
        assert set(_columns(again, "meta", "plans")) >= {"plan_id", "plan_hash", "last_run_id"}
        assert set(_columns(again, "meta", "schema_changes")) >= {"schema_name", "change"}
    finally:
        again.dispose()


def test_a_fresh_warehouse_is_migrated_by_its_first_ensure_table(warehouse):
    warehouse.ensure_table(EVERY_TYPE)
    assert current_version(warehouse) == HEAD


def test_a_meta_schema_newer_than_the_code_is_refused(warehouse):
    warehouse.migrate()
    with warehouse.transaction() as conn:
        conn.exec_driver_sql(
            "insert into meta.schema_versions values "
            f"({HEAD + 1}, 'from the future', current_timestamp)"
        )
    with pytest.raises(WarehouseError, match=f"version {HEAD + 1}, newer than this code's {HEAD}"):
        warehouse.migrate()
    with pytest.raises(WarehouseError, match=f"no migration version {HEAD + 1}"):
        warehouse.migrate(target=HEAD + 1)


def _traffic_row(day: dt.date, marker: str, spec: TableSpec) -> dict:
    values = {"text": marker, "date": day, "bigint": 7, "integer": 7, "double": 1.5}
    row = {name: values[kind] for name, kind in spec.columns}
    row.update(source_id="ga4_export")
    return row


def test_a_warehouse_holding_legacy_tables_is_left_untouched_by_a_plans_tables(warehouse_url):
    # Written before plans owned their rows: `raw.csv_traffic` in the declared schema (here
    # lacking a column today's declaration has), and the old `meta.schema_migrations`.
    day = dt.date(2026, 1, 5)
    legacy = TableSpec("raw", "csv_traffic", CSV_TRAFFIC.columns[:-1], CSV_TRAFFIC.grain)
    unscoped = Warehouse.from_url(warehouse_url)
    try:
        with unscoped.transaction() as conn:
            for schema in ("raw", "meta"):
                conn.execute(sa.schema.CreateSchema(schema))
            sa_table("raw", "csv_traffic", legacy.columns).create(conn)
            conn.execute(
                sa_table("raw", "csv_traffic", legacy.columns).insert(),
                [_traffic_row(day, "legacy", legacy)],
            )
            conn.exec_driver_sql(
                "create table meta.schema_migrations "
                "(version integer, description text, applied_at timestamp with time zone)"
            )
            conn.exec_driver_sql(
                "insert into meta.schema_migrations values (4, 'old', current_timestamp)"
            )
        legacy_columns = _columns(unscoped, "raw", "csv_traffic")
        legacy_rows = unscoped.read_frame("select * from raw.csv_traffic")

        # A plan's run: its table declared, then the same source and day replaced.
        acme = unscoped.for_plan(PLAN)
        acme.ensure_table(CSV_TRAFFIC)
        with acme.transaction() as conn:
            frame = pd.DataFrame([_traffic_row(day, "acme", CSV_TRAFFIC)])
            acme.replace_rows(conn, CSV_TRAFFIC, frame, Days("ga4_export", day, day))

        assert _columns(unscoped, "raw", "csv_traffic") == legacy_columns
        pd.testing.assert_frame_equal(
            unscoped.read_frame("select * from raw.csv_traffic"), legacy_rows
        )
        assert list(_columns(unscoped, "acme_raw", "csv_traffic")) == CSV_TRAFFIC.column_names
        mine = unscoped.read_frame("select source, line from acme_raw.csv_traffic")
        assert mine.to_dict("records") == [{"source": "acme", "line": 7}]
        old = unscoped.read_frame("select version, description from meta.schema_migrations")
        assert old.to_dict("records") == [{"version": 4, "description": "old"}]
        assert {row[0] for row in _changes(unscoped)} == {"acme_raw"}
    finally:
        unscoped.dispose()
