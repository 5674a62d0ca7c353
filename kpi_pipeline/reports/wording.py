"""Scores in words a non-analyst reads: numbers formatted per KPI kind, statuses as phrases.

Pure functions over one row of `marts.kpi_scores` (or `marts.kpi_period_to_date`) given as a
Mapping (a dict, a pandas Series, a SQLAlchemy row's `_mapping`); anything a row does not
carry, such as the KPI's deadline, is passed explicitly. Missing values (None or NaN) are
spoken of, never printed as "nan". The HTML report and the scorecard share this vocabulary.

Example: `describe_period(row, date(2027, 3, 31))` reads
"2.28 % vs 2.34 % expected; at risk; on pace to reach 2.41 % of 2.50 % by 31 March 2027
(projected: at risk)".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd

# Kinds whose values are counts: shown as whole numbers with thousands separators.
COUNT_KINDS = frozenset({"volume", "users"})

STATUS_WORDS = {
    "achieved": "target achieved",
    "on_track": "on track",
    "at_risk": "at risk",
    "off_track": "off track",
    "insufficient_data": "not enough data to judge",
}

MISSING = "-"


def is_missing(value: object) -> bool:
    """Whether a cell holds no value: None, NaN or pandas' NA/NaT."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a sequence is a value, not a missing one
        return False


def is_rate_kind(kind: str) -> bool:
    """Rates (`conversion_rate`, `engagement_rate`, ...) lie in [0, 1] and read as percent."""
    return kind.endswith("_rate")


def format_value(value: float | None, kind: str, *, percent_sign: str = " %") -> str:
    """A KPI value as people read it: rates as percent with two decimals ("2.28 %"),
    counts (`volume`, `users`) as integers with thousands separators ("12,345"), ratios
    with four significant digits ("1.235", or "12,346" from a thousand up). `-` when missing.

    A dense table passes `percent_sign="%"` to write "2.28%".
    """
    if is_missing(value):
        return MISSING
    number = float(value)
    if kind in COUNT_KINDS:
        return f"{number:,.0f}"
    if is_rate_kind(kind):
        return f"{number * 100:.2f}{percent_sign}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def format_change(change: float | None, kind: str) -> str:
    """A signed difference between two values of one KPI: rates in percentage points
    ("+0.12 pt"), counts as signed integers ("-1,204"), ratios with four significant digits."""
    if is_missing(change):
        return MISSING
    number = float(change)
    if is_rate_kind(kind):
        return f"{number * 100:+.2f} pt"
    if kind in COUNT_KINDS or abs(number) >= 1000:
        return f"{number:+,.0f}"
    return f"{number:+.4g}"


def format_interval(
    low: float | None, high: float | None, kind: str, *, percent_sign: str = " %"
) -> str:
    """An interval as "2.10–2.46 %" (rates) or "1,200–1,350" (counts); `-` when either end is
    missing."""
    if is_missing(low) or is_missing(high):
        return MISSING
    if is_rate_kind(kind):
        return f"{float(low) * 100:.2f}–{float(high) * 100:.2f}{percent_sign}"
    return f"{format_value(low, kind)}–{format_value(high, kind)}"


def format_date(day: dt.date | None) -> str:
    """A date as people write it: "31 March 2027" (English month names, any locale)."""
    if is_missing(day):
        return MISSING
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def status_words(status: str | None) -> str:
    """ "at_risk" → "at risk"; an unknown status reads as itself with spaces, none as "-"."""
    if is_missing(status):
        return MISSING
    return STATUS_WORDS.get(str(status), str(status).replace("_", " "))


def describe_hold(reason: str | None) -> str | None:
    """Why a period's alerts wait, in words; None when nothing holds it.

    `provisional` means recent days may still be revised by the source; `check:<name>` a data
    check flagged the period; other flags (`sampled`, `thresholded`) are the source's own.
    """
    if is_missing(reason):
        return None
    parts = []
    for flag in (part.strip() for part in str(reason).split(",")):
        if not flag:
            continue
        if flag == "provisional":
            parts.append("provisional (recent days may still be revised)")
        elif flag.startswith("check:"):
            parts.append(f"flagged by the {flag.removeprefix('check:')} data check")
        else:
            parts.append(f"{flag} by the source")
    if not parts:
        return None
    return "held: " + ", ".join(parts) + "; no alert until it clears"


def describe_projection(row: Mapping, deadline: dt.date | None) -> str | None:
    """Where the forecast lands at the deadline: "on pace to reach 2.41 % of 2.50 % by
    31 March 2027" (a decreasing KPI: "on pace for 41.00 % against a target of 38.00 % by …").

    Reads `kind`, `forecast_at_deadline`, `target` and `direction` (default increase). None
    without a forecast (too few closed periods, or the deadline has passed). `deadline` is
    the KPI's target date; without it the sentence ends "by the deadline".
    """
    forecast = row.get("forecast_at_deadline")
    if is_missing(forecast):
        return None
    kind = str(row.get("kind"))
    by = f"by {format_date(deadline)}" if not is_missing(deadline) else "by the deadline"
    reach = format_value(forecast, kind)
    target = row.get("target")
    if is_missing(target):
        return f"on pace to reach {reach} {by}"
    if row.get("direction") == "decrease":
        return f"on pace for {reach} against a target of {format_value(target, kind)} {by}"
    return f"on pace to reach {reach} of {format_value(target, kind)} {by}"


def describe_period(row: Mapping, deadline: dt.date | None) -> str:
    """One scored period in a sentence: value against expected, status, projection.

    "2.28 % vs 2.34 % expected; at risk; on pace to reach 2.41 % of 2.50 % by 31 March 2027
    (projected: at risk)"

    Reads `kind`, `value`, `expected`, `status`, `is_partial`, `forecast_at_deadline`,
    `projected_status`, `target`, `direction` and `hold_reason` (missing keys read as
    missing values). A partial period says "so far"; the projected status (judged on the
    forecast's whole interval, so not always what the forecast alone suggests) follows the
    projection in brackets; a hold is the last clause.
    """
    kind = str(row.get("kind"))
    value, expected = row.get("value"), row.get("expected")
    if is_missing(value):
        clauses = ["no value for this period"]
    else:
        so_far = " so far" if _truthy(row.get("is_partial")) else ""
        measured = f"{format_value(value, kind)}{so_far}"
        if is_missing(expected):
            clauses = [measured]
        else:
            clauses = [f"{measured} vs {format_value(expected, kind)} expected"]
    status = row.get("status")
    if not is_missing(status):
        clauses.append(status_words(status))
    projection = describe_projection(row, deadline)
    if projection is not None:
        projected = row.get("projected_status")
        if not is_missing(projected):
            projection += f" (projected: {status_words(projected)})"
        clauses.append(projection)
    hold = describe_hold(row.get("hold_reason"))
    if hold is not None:
        clauses.append(hold)
    return "; ".join(clauses)


def describe_period_to_date(row: Mapping, kind: str) -> str | None:
    """A partial period against the same days of the previous one (a `kpi_period_to_date`
    row): "2026-11 so far (25 days): 2.31 % vs 2.20 % over the same days of the previous
    period (+0.11 pt)". Without a previous value: "… (no comparable previous days)".
    None when the period has no value yet.
    """
    value = row.get("value")
    if is_missing(value):
        return None
    days = row.get("days_elapsed")
    span = f" ({int(days)} day{'s' if int(days) != 1 else ''})" if not is_missing(days) else ""
    head = f"{row.get('period_label')} so far{span}: {format_value(value, kind)}"
    previous = row.get("previous_value")
    if is_missing(previous):
        return f"{head} (no comparable previous days)"
    change = row.get("change")
    if is_missing(change):
        change = float(value) - float(previous)
    return (
        f"{head} vs {format_value(previous, kind)} over the same days of the previous period "
        f"({format_change(change, kind)})"
    )


def _truthy(value: object) -> bool:
    return not is_missing(value) and bool(value)


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
