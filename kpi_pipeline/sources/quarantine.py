"""Rows a source could not use, kept with the reason instead of being dropped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec

QUARANTINE = TableSpec(
    schema="raw",
    name="quarantine",
    columns=(
        ("source_id", "text"),
        ("partition_date", "date"),
        ("file", "text"),
        ("line", "bigint"),
        ("column_name", "text"),
        ("reason", "text"),
        ("raw_text", "text"),
    ),
    grain="one row per rejected input row (file and line)",
    keys=("source_id", "file", "line"),
    indexes=(("source_id", "partition_date"),),
)


def quarantine_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A quarantine-shaped frame (without source_id, added by the caller)."""
    columns = [c for c in QUARANTINE.column_names if c != "source_id"]
    frame = pd.DataFrame(list(rows), columns=columns)
    return frame.astype({"line": "int64"}) if not frame.empty else frame


class RowProblems:
    """The first problem of each row of a text frame (with file, line and raw_text columns).

    Checks run column by column over the whole frame; a row keeps the first problem found,
    since fixing it usually reveals the next.
    """

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows
        self.reason = pd.Series(pd.NA, index=rows.index, dtype="object")
        self.column = pd.Series(pd.NA, index=rows.index, dtype="object")

    def flag(self, mask: pd.Series, column_name: str, message: pd.Series | str) -> None:
        new = mask & self.reason.isna()
        self.reason.loc[new] = message if isinstance(message, str) else message[new]
        self.column.loc[new] = column_name

    @property
    def clean(self) -> pd.Series:
        return self.reason.isna()

    def quarantine(self, dates: pd.Series) -> pd.DataFrame:
        """Quarantine rows (without source_id) for every flagged row, dated where possible."""
        bad = self.reason.notna()
        return pd.DataFrame(
            {
                "partition_date": dates.dt.date.where(dates.notna(), None)[bad],
                "file": self.rows.loc[bad, "file"],
                "line": self.rows.loc[bad, "line"],
                "column_name": self.column[bad],
                "reason": self.reason[bad],
                "raw_text": self.rows.loc[bad, "raw_text"],
            }
        )
