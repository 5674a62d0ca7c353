"""Versioned migrations create every table the code writes and upgrade old warehouses in place."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from kpi_pipeline.alerts.store import ALERT_DELIVERIES, ALERT_STATE
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.period_to_date import KPI_PERIOD_TO_DATE
from kpi_pipeline.metrics.plan_tables import PLAN_TABLES
from kpi_pipeline.metrics.rollup import OBJECTIVE_STATUS, TACTIC_RANKING
from kpi_pipeline.metrics.score_tables import KPI_SCORES, KPI_SNAPSHOTS
from kpi_pipeline.sources.csv_export import CSV_EVENTS, CSV_TRAFFIC
from kpi_pipeline.sources.email.tables import EMAIL_CAMPAIGNS, EMAIL_LIST_GROWTH
from kpi_pipeline.sources.ga4.reports import (
    GA4_EVENTS,
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    GA4_TRAFFIC,
)
from kpi_pipeline.sources.quarantine import QUARANTINE
from kpi_pipeline.sources.session_csv import SESSION_ROWS
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError, sa_table
from kpi_pipeline.warehouse.migrations import (
    BASELINE_TABLES,
    HEAD,
    PARTITION_INDEXES,
    SCORE_COLUMNS_V3,
    current_version,
)

# Every table the pipeline writes through `ensure_table` + `replace_*`.
WRITTEN_TABLES = (
    CSV_TRAFFIC,
    CSV_EVENTS,
    QUARANTINE,
    *PLAN_TABLES,
    KPI_SCORES,
    KPI_SNAPSHOTS,
    GA4_TRAFFIC,
    GA4_EVENTS,
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    EMAIL_CAMPAIGNS,
    EMAIL_LIST_GROWTH,
    SESSION_ROWS,
    KPI_PERIOD_TO_DATE,
    OBJECTIVE_STATUS,
    TACTIC_RANKING,
    ALERT_STATE,
    ALERT_DELIVERIES,
)
# information_schema's name for each declared type, per engine.
TYPE_NAMES = {
    "text": {"text", "VARCHAR"},
    "date": {"date", "DATE"},
    "bigint": {"bigint", "BIGINT"},
    "integer": {"integer", "INTEGER"},
    "double": {"double precision", "DOUBLE"},
    "boolean": {"boolean", "BOOLEAN"},
    "timestamp": {"timestamp with time zone", "TIMESTAMP WITH TIME ZONE"},
}
V1_SNAPSHOTS = TableSpec("marts", "kpi_snapshots", BASELINE_TABLES[("marts", "kpi_snapshots")], "")


@pytest.fixture
def warehouse(warehouse_url):
    wh = Warehouse.from_url(warehouse_url)
    yield wh
    wh.dispose()


def _columns(wh: Warehouse, spec: TableSpec) -> dict[str, str]:
    frame = wh.read_frame(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = :schema and table_name = :name",
        {"schema": spec.schema, "name": spec.name},
    )
    return dict(zip(frame["column_name"], frame["data_type"], strict=True))


def _old_snapshots() -> pd.DataFrame:
    """Two snapshot rows as a run before migrations wrote them (version-1 columns only)."""
    rows = []
    for i, status in enumerate(["on_track", "off_track"]):
        row = dict.fromkeys(V1_SNAPSHOTS.column_names)
        row.update(
            run_id=f"run-{i}",
            computed_at=pd.Timestamp(f"2026-01-0{i + 1}T06:00:00Z"),
            plan_hash="abc",
            kpi_id="conv",
            grain="week",
            period_start=dt.date(2026, 1, 5),
            segment_type="all",
            segment="all",
            value=0.25 + i,
            is_partial=False,
            status=status,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _read_snapshots(wh: Warehouse) -> pd.DataFrame:
    return wh.read_frame(
        "select run_id, plan_hash, kpi_id, value, status from marts.kpi_snapshots order by run_id"
    )


def test_a_new_warehouse_gets_every_table_the_code_writes_with_its_declared_types(warehouse):
    assert current_version(warehouse) == 0
    assert warehouse.migrate() == list(range(1, HEAD + 1))
    assert current_version(warehouse) == HEAD
    for spec in WRITTEN_TABLES:
        columns = _columns(warehouse, spec)
        # Same set both ways: a column declared in code but never migrated (or the reverse)
        # fails here, asking for a migration.
        assert set(columns) == set(spec.column_names), spec.qualified_name
        for name, kind in spec.columns:
            assert columns[name] in TYPE_NAMES[kind], f"{spec.qualified_name}.{name}"
    # Running again changes nothing.
    assert warehouse.migrate() == []


def test_a_warehouse_made_before_migrations_is_adopted_and_keeps_its_snapshots(warehouse):
    # What the code wrote before migrations existed: the version-1 tables, no version table.
    with warehouse.transaction() as conn:
        for (schema, name), columns in BASELINE_TABLES.items():
            conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            sa_table(schema, name, columns).create(conn)
        warehouse.bulk_insert(conn, V1_SNAPSHOTS, _old_snapshots())
    before = _read_snapshots(warehouse)

    assert warehouse.migrate() == list(range(1, HEAD + 1))

    after = _read_snapshots(warehouse)
    pd.testing.assert_frame_equal(after, before)
    assert after["status"].tolist() == ["on_track", "off_track"]
    added = warehouse.read_frame(
        "select " + ", ".join(c for c, _ in SCORE_COLUMNS_V3) + " from marts.kpi_snapshots"
    )
    assert added.isna().all().all()  # new columns exist, empty for old rows


def test_a_version_1_warehouse_upgrades_in_place(warehouse):
    assert warehouse.migrate(target=1) == [1]
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, V1_SNAPSHOTS, _old_snapshots())
    assert KPI_SNAPSHOTS.column_names[-1] not in _columns(warehouse, KPI_SNAPSHOTS)

    assert warehouse.migrate() == list(range(2, HEAD + 1))

    assert _read_snapshots(warehouse)["run_id"].tolist() == ["run-0", "run-1"]
    assert set(_columns(warehouse, KPI_SNAPSHOTS)) == set(KPI_SNAPSHOTS.column_names)
    # The upgraded table takes a new run's snapshot, new columns included.
    new = (
        _old_snapshots()
        .iloc[:1]
        .assign(run_id="run-2", quality_flags=None, forecast_low=None, forecast_high=None)
    )
    with warehouse.transaction() as conn:
        warehouse.bulk_insert(conn, KPI_SNAPSHOTS, new.assign(hold_reason="holiday"))
    reasons = warehouse.read_frame("select run_id, hold_reason from marts.kpi_snapshots")
    assert reasons.set_index("run_id")["hold_reason"].isna().to_dict() == {
        "run-0": True,
        "run-1": True,
        "run-2": False,
    }
    if warehouse.is_postgres:
        indexes = warehouse.read_frame("select indexname from pg_indexes")["indexname"]
        assert set(PARTITION_INDEXES) <= set(indexes)


def test_a_warehouse_newer_than_the_code_is_refused(warehouse):
    warehouse.migrate()
    with warehouse.transaction() as conn:
        conn.exec_driver_sql(
            "insert into meta.schema_migrations values "
            f"({HEAD + 1}, 'from the future', current_timestamp)"
        )
    with pytest.raises(WarehouseError, match=f"version {HEAD + 1}, newer than this code's {HEAD}"):
        warehouse.migrate()


def test_a_declared_column_no_migration_creates_is_an_error_not_a_silent_alter(warehouse):
    grown = TableSpec(
        "marts", "kpi_scores", (*KPI_SCORES.columns, ("new_idea", "double")), KPI_SCORES.grain
    )
    with pytest.raises(WarehouseError, match=r"lacks column\(s\) \['new_idea'\].*add a migration"):
        warehouse.ensure_table(grown)


def test_a_table_no_migration_knows_yet_is_created_from_its_spec(warehouse):
    # A source under development writes before its migration exists: it still runs.
    spec = TableSpec("raw", "brand_new_source", (("date", "date"), ("n", "bigint")), "t")
    warehouse.ensure_table(spec)
    assert _columns(warehouse, spec) in (
        {"date": "date", "n": "bigint"},
        {"date": "DATE", "n": "BIGINT"},
    )
