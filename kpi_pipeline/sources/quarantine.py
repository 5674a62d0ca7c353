"""Rows a source could not use, kept with the reason instead of being dropped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


# A quarantined row keeps this much of its text (a junk file must not be kept whole); the
# reason says when the text was cut. Reasons quoting a value are cut likewise.
RAW_TEXT_LIMIT = 1000
REASON_LIMIT = 500


def quarantine_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A quarantine-shaped frame (without source_id, added by the caller)."""
    columns = [c for c in QUARANTINE.column_names if c != "source_id"]
    frame = pd.DataFrame(list(rows), columns=columns)
    return frame.astype({"line": "int64"}) if not frame.empty else frame


def compact_quarantine(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (quarantine-shaped, without source_id) as kept until it is written: texts cut
    to their limits, strings stored compactly, dates as datetime64[s] (NaT when undated)."""
    if frame.empty:
        return frame
    raw = frame["raw_text"].astype("str")
    reason = frame["reason"].astype("str")
    long_reason = reason.str.len() > REASON_LIMIT
    if long_reason.any():
        reason = reason.mask(long_reason, reason.str.slice(0, REASON_LIMIT - 1) + "\u2026")
    length = raw.str.len()
    cut = length > RAW_TEXT_LIMIT
    if cut.any():
        raw = raw.mask(cut, raw.str.slice(0, RAW_TEXT_LIMIT))
        note = (
            f" (raw_text cut to its first {RAW_TEXT_LIMIT} of "
            + length[cut].astype("int64").astype("str")
            + " characters)"
        )
        reason = reason.mask(cut, reason + note.reindex(reason.index, fill_value=""))
    return pd.DataFrame(
        {
            "partition_date": pd.to_datetime(frame["partition_date"], errors="coerce").astype(
                "datetime64[s]"
            ),
            "file": frame["file"].astype("category"),
            "line": frame["line"].astype("int64"),
            "column_name": frame["column_name"]
            .astype(object)
            .where(frame["column_name"].notna(), None),
            "reason": reason,
            "raw_text": raw,
        },
        index=frame.index,
    )


class RowProblems:
    """The first problem of each row of a text frame (with file, line and raw_text columns).

    Checks run column by column over the whole frame; a row keeps the first problem found,
    since fixing it usually reveals the next.
    """

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows
        self.reason = pd.Series(pd.NA, index=rows.index, dtype="object")
        self.column = pd.Series(pd.NA, index=rows.index, dtype="object")

    def flag(
        self,
        mask: pd.Series,
        column_name: str,
        message: str | pd.Series | Callable[[pd.Series], pd.Series],
    ) -> None:
        """Give `message` to the rows of `mask` without a problem yet. A callable gets the
        mask of those rows and returns their messages (only flagged rows are described)."""
        new = mask & self.reason.isna()
        if not new.any():
            return
        if callable(message):
            message = message(new)
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
                "partition_date": dates[bad],
                "file": self.rows.loc[bad, "file"],
                "line": self.rows.loc[bad, "line"],
                "column_name": self.column[bad],
                "reason": self.reason[bad],
                "raw_text": self.rows.loc[bad, "raw_text"],
            }
        )
