"""Reporting periods: which day, ISO week, month and (fiscal) quarter a date belongs to.

Every date here is a *local* date in the plan's timezone: GA4 and its exports report days in
the property's zone, so bucketing never needs a clock time except to find "today".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from kpi_pipeline.plan.models import Grain

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    grain: Grain
    start: dt.date
    end: dt.date  # last day, inclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_of(day: dt.date, grain: Grain, fiscal_year_start_month: int = 1) -> Period:
    """The period of `grain` containing `day`.

    Weeks are ISO weeks (Monday to Sunday, numbered by the ISO year, so 2026-01-01 falls in
    2026-W01 that starts on 2025-12-29). Quarters start on the plan's fiscal year start
    month; with January they are calendar quarters.
    """
    if grain is Grain.DAY:
        return Period(grain, day, day, day.isoformat())
    if grain is Grain.WEEK:
        iso = day.isocalendar()
        start = day - dt.timedelta(days=iso.weekday - 1)
        return Period(grain, start, start + dt.timedelta(days=6), f"{iso.year}-W{iso.week:02d}")
    if grain is Grain.MONTH:
        start = day.replace(day=1)
        return Period(grain, start, _add_months(start, 1) - ONE_DAY, f"{start:%Y-%m}")
    if grain is Grain.QUARTER:
        months_into_year = (day.month - fiscal_year_start_month) % 12
        start = _add_months(day.replace(day=1), -(months_into_year % 3))
        quarter = months_into_year // 3 + 1
        end = _add_months(start, 3) - ONE_DAY
        if fiscal_year_start_month == 1:
            label = f"{start.year} Q{quarter}"
        else:
            # A fiscal year is named by the two calendar years it spans: FY2026-27.
            fy_first = start.year if start.month >= fiscal_year_start_month else start.year - 1
            label = f"FY{fy_first}-{(fy_first + 1) % 100:02d} Q{quarter}"
        return Period(grain, start, end, label)
    raise ValueError(f"unknown grain {grain!r}")


def build_calendar(
    first_day: dt.date, last_day: dt.date, fiscal_year_start_month: int = 1
) -> pd.DataFrame:
    """One row per (date, grain): the period each date falls in, for SQL joins.

    Columns: date, grain, period_start, period_end, period_label.
    """
    if last_day < first_day:
        raise ValueError(f"calendar ends ({last_day}) before it starts ({first_day})")
    days = pd.date_range(first_day, last_day, freq="D").date
    rows = [
        (day, grain.value, p.start, p.end, p.label)
        for grain in Grain
        for day in days
        for p in (period_of(day, grain, fiscal_year_start_month),)
    ]
    frame = pd.DataFrame(
        rows, columns=["date", "grain", "period_start", "period_end", "period_label"]
    )
    for column in ("date", "period_start", "period_end"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


def local_date(instant: dt.datetime, timezone: str) -> dt.date:
    """The calendar date of an aware instant in `timezone` (naive instants are refused)."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no place in time; attach its timezone")
    return instant.astimezone(ZoneInfo(timezone)).date()


def day_bounds_utc(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants where local `day` starts and ends: 23 or 25 hours apart on DST days."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + ONE_DAY, dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def last_closed_day(now: dt.datetime, timezone: str) -> dt.date:
    """Yesterday in the plan's timezone: the latest day whose data is complete."""
    return local_date(now, timezone) - ONE_DAY
