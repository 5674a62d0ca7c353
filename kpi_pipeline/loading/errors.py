"""Known loading failures: each carries a message a person can act on, and changed nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


class LoadError(RuntimeError):
    """A source could not be loaded as asked; the warehouse was left as it was."""


@dataclass(frozen=True)
class MissingDay:
    """A day a source had rows for and whose read produced none: its rows were kept."""

    source_id: str
    day: dt.date
    rows_kept: int
    where: str  # the glob, property or platform that was read
    why: str = ""  # what the read found (no file covers the day, an empty answer, ...)


def describe_days(days: list[dt.date]) -> str:
    """'2026-01-07' / '2026-01-07..2026-01-09' / '2026-01-07, 2026-01-09 and 3 more'."""
    days = sorted(days)
    if not days:
        return "no day"
    if len(days) == 1:
        return days[0].isoformat()
    if (days[-1] - days[0]).days + 1 == len(days):
        return f"{days[0]}..{days[-1]}"
    shown = ", ".join(d.isoformat() for d in days[:3])
    return shown if len(days) <= 3 else f"{shown} and {len(days) - 3} more"


class MissingDaysError(LoadError):
    """Days that had rows read as empty: kept, and the run fails (unless allowed)."""

    def __init__(self, missing: list[MissingDay], accept_command: str, loaded_note: str = ""):
        self.missing = missing
        by_source: dict[str, list[MissingDay]] = {}
        for item in missing:
            by_source.setdefault(item.source_id, []).append(item)
        lines = []
        for source_id, items in by_source.items():
            kept = sum(i.rows_kept for i in items)
            why = items[0].why
            lines.append(
                f"source {source_id!r} read no rows for {describe_days([i.day for i in items])} "
                f"from {items[0].where}{f' ({why})' if why else ''}; kept the {kept:,} row(s) "
                "already loaded for those days"
            )
        super().__init__(
            "; ".join(lines)
            + f". {loaded_note or 'This run changed nothing.'} If data is late or a file "
            "moved, deliver it and re-run; to accept the empty days on purpose: " + accept_command
        )
