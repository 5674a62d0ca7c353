"""Period to date: a partial period against the same elapsed days of the previous one.

On Wednesday, this week's three days are compared with last Monday to Wednesday, not with
last week's seven days; on 10 March, March so far with 1 to 10 February. The path
comparison (expected value on the last loaded day) is in `kpi_scores` already.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.periods import ONE_DAY, period_of
from kpi_pipeline.plan.models import Grain

KPI_PERIOD_TO_DATE = TableSpec(
    "marts",
    "kpi_period_to_date",
    (
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_start", "date"),
        ("period_label", "text"),
        ("as_of_date", "date"),
        ("days_elapsed", "bigint"),
        ("value", "double"),
        ("expected", "double"),
        ("status", "text"),
        ("previous_start", "date"),
        ("previous_end", "date"),
        ("previous_value", "double"),
        ("change", "double"),
    ),
    grain="one row per kpi, grain, segment_type and segment whose current period is partial",
    keys=("kpi_id", "grain", "segment_type", "segment", "period_start"),
)


def previous_span(
    period_start: dt.date, as_of: dt.date, grain: Grain, fiscal_year_start_month: int = 1
) -> tuple[dt.date, dt.date]:
    """The previous period's first days, as many as have elapsed in this one (inclusive).

    A longer current period is capped at the previous period's end: 31 March so far compares
    with the whole of February.
    """
    elapsed = (as_of - period_start).days
    if elapsed < 0:
        raise ValueError(f"as of {as_of} is before the period starting {period_start}")
    previous = period_of(period_start - ONE_DAY, grain, fiscal_year_start_month)
    return previous.start, min(previous.start + dt.timedelta(days=elapsed), previous.end)


def period_to_date(
    scores: pd.DataFrame,
    daily: pd.DataFrame,
    fiscal_year_start_month: int = 1,
    first_day: dt.date | None = None,
) -> pd.DataFrame:
    """One row per current partial period (segment included) with the previous span's value.

    `scores` is `kpi_scores`-shaped; `daily` has kpi_id, date, segment_type, segment,
    numerator, denominator. Periods cut by the start of history (they began before the
    first loaded day) are not "to date" and are left out, as is a previous span reaching
    before the first loaded day (its value would be short of days). A volume KPI (no
    denominator) compares sums, a rate the ratio of sums.
    `first_day` is the first loaded day, when `daily` holds only the days from
    `earliest_needed_day` on.
    """
    if scores.empty or daily.empty:
        return pd.DataFrame(columns=KPI_PERIOD_TO_DATE.column_names)
    daily = daily.assign(date=pd.to_datetime(daily["date"]).dt.date)
    first_day = first_day or min(daily["date"])
    sums = daily.set_index(["kpi_id", "segment_type", "segment", "date"]).sort_index()
    partial = scores[scores["is_partial"].astype(bool)]
    rows = []
    for row in partial.itertuples(index=False):
        start = pd.Timestamp(row.period_start).date()
        as_of = pd.Timestamp(row.as_of_date).date()
        if start < first_day:
            continue
        prev_start, prev_end = previous_span(
            start, as_of, Grain(row.grain), fiscal_year_start_month
        )
        previous = None
        if prev_start >= first_day:
            key = (row.kpi_id, row.segment_type, row.segment)
            try:
                span = sums.loc[key].loc[prev_start:prev_end]
            except KeyError:
                span = sums.iloc[0:0]
            previous = _value(span, is_volume=pd.isna(row.denominator))
        value = None if pd.isna(row.value) else float(row.value)
        rows.append(
            {
                "kpi_id": row.kpi_id,
                "grain": row.grain,
                "segment_type": row.segment_type,
                "segment": row.segment,
                "period_start": start,
                "period_label": row.period_label,
                "as_of_date": as_of,
                "days_elapsed": (as_of - start).days + 1,
                "value": value,
                "expected": row.expected,
                "status": row.status,
                "previous_start": prev_start,
                "previous_end": prev_end,
                "previous_value": previous,
                "change": None if value is None or previous is None else value - previous,
            }
        )
    frame = pd.DataFrame(rows, columns=KPI_PERIOD_TO_DATE.column_names)
    for column in ("period_start", "as_of_date", "previous_start", "previous_end"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    for column in ("value", "expected", "previous_value", "change"):
        frame[column] = frame[column].astype("float64")
    return frame


def _value(span: pd.DataFrame, is_volume: bool) -> float | None:
    if span.empty:
        return None
    numerator = float(span["numerator"].sum())
    if is_volume:
        return numerator
    denominator = float(span["denominator"].sum())
    return numerator / denominator if denominator > 0 else None


def earliest_needed_day(partial: pd.DataFrame, fiscal_year_start_month: int = 1) -> dt.date | None:
    """The first day `period_to_date` reads for these partial periods (the start of the
    earliest previous span): the daily rows before it need not be read at all."""
    starts = [
        previous_span(
            pd.Timestamp(row.period_start).date(),
            pd.Timestamp(row.as_of_date).date(),
            Grain(row.grain),
            fiscal_year_start_month,
        )[0]
        for row in partial.itertuples(index=False)
        if pd.Timestamp(row.as_of_date) >= pd.Timestamp(row.period_start)
    ]
    return min(starts, default=None)
