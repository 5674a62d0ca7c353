"""Data checks as data: what a table's rows must satisfy, declared next to the table.

Each `Expect` becomes one Great Expectations expectation (see `kpi_pipeline/checks/`) and one
Dagster asset check named `name` on the table's asset. Columns named here are the table's
own; `where` (SQL over the same columns) narrows the rows an expectation applies to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ExpectKind = Literal["unique", "not_null", "between", "a_le_b", "in_set"]


@dataclass(frozen=True)
class Expect:
    name: str  # the check's name (its severity comes from the plan's `quality:` section)
    kind: ExpectKind
    columns: tuple[str, ...]
    description: str
    min_value: float | str | None = None
    max_value: float | str | None = None
    value_set: tuple[object, ...] = ()
    # Multiplies column B in `a_le_b` (a <= factor * b): "key events plausible against
    # sessions" is key_events <= 10 x sessions.
    factor: float | str = 1.0


def counts_non_negative(*columns: str) -> Expect:
    return Expect(
        "counts_non_negative",
        "between",
        columns,
        f"{', '.join(columns)} are counts: never negative",
        min_value=0,
    )


ENGAGED_LE_SESSIONS = Expect(
    "engaged_le_sessions",
    "a_le_b",
    ("engaged_sessions", "sessions"),
    "engaged sessions never exceed sessions",
)

KEY_EVENTS_PLAUSIBLE = Expect(
    "key_events_plausible",
    "a_le_b",
    ("key_events", "sessions"),
    "key events at most `quality.events_per_session_max` per session",
    factor="events_per_session_max",
)

DATES_IN_HISTORY = Expect(
    "dates_in_history",
    "between",
    ("date",),
    "every row is dated between the plan's history_start and today",
    min_value="history_start",
    max_value="today",
)
