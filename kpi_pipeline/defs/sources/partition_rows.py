"""Each day partition of a range run gets its own `dagster/row_count`.

A run over a range materializes every day partition of a source asset from one
`MaterializeResult`, whose metadata Dagster copies onto each partition's event; a count
given there would be the whole range's on every day. Counts added per partition key
(`context.add_asset_metadata(..., partition_key=...)`) take precedence, so each day's
event carries that day's rows; the range's total is `rows_in_run`.
"""

import datetime as dt
from collections.abc import Iterable, Mapping

import dagster as dg
import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Days

ROW_COUNT = "dagster/row_count"


def add_rows_per_day(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, rows_by_day: Mapping[dt.date, int]
) -> int:
    """Record each of the run's day partitions' own row count (0 for a day without rows);
    returns the total over the run's days."""
    total = 0
    for key in context.partition_keys:
        rows = int(rows_by_day.get(dt.date.fromisoformat(key), 0))
        context.add_asset_metadata({ROW_COUNT: rows}, asset_key=asset_key, partition_key=key)
        total += rows
    return total


def frame_rows_by_day(frames: Iterable[pd.DataFrame], column: str = "date") -> dict[dt.date, int]:
    """Rows per day of the frames' `column` (dates, timestamps or ISO strings)."""
    counts: dict[dt.date, int] = {}
    for frame in frames:
        if frame.empty:
            continue
        for day, rows in pd.to_datetime(frame[column]).dt.date.value_counts().items():
            counts[day] = counts.get(day, 0) + int(rows)
    return counts


def warehouse_rows_by_day(
    warehouse: Warehouse, spec: TableSpec, source_ids: Iterable[str], first: dt.date, last: dt.date
) -> dict[dt.date, int]:
    """Rows per day of `spec` the sources hold for [first, last]: what a load just wrote."""
    counts: dict[dt.date, int] = {}
    with warehouse.engine.connect() as conn:
        for source_id in source_ids:
            by_day = warehouse.count_rows(conn, spec, Days(source_id, first, last), by="date")
            for day, rows in by_day.items():
                key = pd.Timestamp(day).date()
                counts[key] = counts.get(key, 0) + rows
    return counts
