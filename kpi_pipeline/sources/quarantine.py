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
)


def quarantine_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A quarantine-shaped frame (without source_id, added by the caller)."""
    columns = [c for c in QUARANTINE.column_names if c != "source_id"]
    frame = pd.DataFrame(list(rows), columns=columns)
    return frame.astype({"line": "int64"}) if not frame.empty else frame
