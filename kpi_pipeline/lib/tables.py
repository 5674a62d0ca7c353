"""Table contracts as data: which columns a stream or mart has, and its grain and keys.

Sources declare the shape of what they emit and the warehouse creates tables from the same
declaration, so neither needs to know the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kpi_pipeline.lib.checks import Expect

ColumnType = Literal["text", "date", "bigint", "integer", "double", "boolean", "timestamp"]


@dataclass(frozen=True)
class TableSpec:
    schema: str
    name: str
    columns: tuple[tuple[str, ColumnType], ...]
    grain: str
    keys: tuple[str, ...] = ()
    # Column lists indexed on PostgreSQL (partition filters); DuckDB's zone maps prune those
    # scans already and its indexes would slow bulk loads.
    indexes: tuple[tuple[str, ...], ...] = ()
    # What its rows must satisfy, checked after every load (kpi_pipeline/checks/).
    checks: tuple[Expect, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]
