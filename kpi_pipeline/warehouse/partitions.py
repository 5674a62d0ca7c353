"""Partitions as values: which rows of a table a write replaces, built as SQLAlchemy
expressions against the table itself (never SQL text passed between layers).

A partition also names itself (`scope`), so a PostgreSQL advisory lock can claim it and an
error can say which rows were at stake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa


class Partition(Protocol):
    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]: ...

    def scope(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Days:
    """One source's rows dated `first`..`last` (inclusive) in the table's `column`."""

    source_id: str
    first: dt.date
    last: dt.date
    column: str = "date"

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(
            table.c.source_id == self.source_id,
            table.c[self.column].between(self.first, self.last),
        )

    def scope(self) -> dict[str, str]:
        return {
            "source_id": self.source_id,
            "first_day": self.first.isoformat(),
            "last_day": self.last.isoformat(),
        }

    @property
    def dates(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Match:
    """Rows whose columns equal the given values (e.g. one run's snapshot rows)."""

    values: Mapping[str, Any]

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(sa.true(), *(table.c[name] == value for name, value in self.values.items()))

    def scope(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.values.items()}


@dataclass(frozen=True)
class QuarantineOf:
    """A source's quarantined rows of `days`, plus the undated ones of the files it read:
    bad rows of files it did not read stay as they are."""

    days: Days
    files: Sequence[str] = field(default_factory=tuple)

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        dated = self.days.condition(table)
        if not self.files:
            return dated
        undated = sa.and_(
            table.c.source_id == self.days.source_id,
            table.c[self.days.column].is_(None),
            table.c.file.in_(list(self.files)),
        )
        return sa.or_(dated, undated)

    def scope(self) -> dict[str, str]:
        return self.days.scope()


@dataclass(frozen=True)
class Everything:
    """The whole table (marts rebuilt from scratch)."""

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.true()

    def scope(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class ValuesIn:
    """One source's rows whose `column` is one of `values` (e.g. files of a manifest)."""

    source_id: str
    column: str
    values: Sequence[Any]

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(
            table.c.source_id == self.source_id, table.c[self.column].in_(list(self.values))
        )

    def scope(self) -> dict[str, str]:
        return {"source_id": self.source_id, self.column: "*"}
