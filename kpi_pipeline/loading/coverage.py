"""Which days each source read whole: `raw.source_days`.

A KPI's period is complete when every source feeding it covered each of its days, whether
or not those days held rows (a day with no quote request is still a day read). The loaders
replace a source's coverage for the days they replace, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec

SOURCE_DAYS = TableSpec(
    "raw",
    "source_days",
    (("source_id", "text"), ("date", "date"), ("row_count", "bigint"), ("read_at", "timestamp")),
    grain="one row per source and day it read whole (rows it held that day)",
    keys=("source_id", "date"),
    indexes=(("source_id", "date"),),
)


def coverage_frame(
    source_id: str,
    days: Iterable[dt.date],
    rows_by_day: Mapping[dt.date, int],
    read_at: dt.datetime,
) -> pd.DataFrame:
    """Coverage rows for `days` (each with its row count, 0 when it held none)."""
    days = sorted(set(days))
    frame = pd.DataFrame(
        {
            "source_id": source_id,
            "date": pd.to_datetime(pd.Series(days, dtype="object")).astype("datetime64[s]"),
            "row_count": [int(rows_by_day.get(day, 0)) for day in days],
            "read_at": pd.Timestamp(read_at),
        },
        columns=SOURCE_DAYS.column_names,
    )
    return frame


def rows_by_day(frame: pd.DataFrame, column: str = "date") -> dict[dt.date, int]:
    """Rows per day of a source frame."""
    if frame.empty:
        return {}
    counts = pd.to_datetime(frame[column]).value_counts()  # per distinct day, not per row
    return {pd.Timestamp(day).date(): int(n) for day, n in counts.items()}
