"""Partition replace is all-or-nothing and bulk insert keeps every value."""

import datetime as dt

import pandas as pd
import pytest

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError

SPEC = TableSpec(
    "raw",
    "things",
    (("date", "date"), ("name", "text"), ("n", "bigint"), ("x", "double")),
    grain="t",
)


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
def warehouse(tmp_path):
    wh = Warehouse.from_url(f"duckdb:///{tmp_path / 'nested' / 'w.duckdb'}")
    wh.ensure_table(SPEC)
    yield wh
    wh.dispose()


def _rows(wh: Warehouse) -> list[tuple]:
    frame = wh.read_frame("select * from raw.things order by date, name")
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
