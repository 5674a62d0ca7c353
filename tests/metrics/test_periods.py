"""Reporting periods: ISO weeks, months, (fiscal) quarters, local days around DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from kpi_pipeline.metrics.periods import (
    Period,
    build_calendar,
    day_bounds_utc,
    last_closed_day,
    local_date,
    period_of,
)
from kpi_pipeline.plan.models import Grain

D = dt.date.fromisoformat
UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    """An aware UTC instant from `YYYY-MM-DDTHH:MM:SS`."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- period_of


@pytest.mark.parametrize(
    ("day", "grain", "fy_start", "start", "end", "label"),
    [
        # A day is its own period, labelled by its ISO date.
        pytest.param(
            "2026-03-08", Grain.DAY, 1, "2026-03-08", "2026-03-08", "2026-03-08", id="day"
        ),
        # 2026-01-01 is a Thursday: its ISO week starts Monday 2025-12-29 (Thu - 3 days) but
        # is numbered by ISO year 2026 (the week holds the year's first Thursday) -> 2026-W01.
        pytest.param(
            "2026-01-01",
            Grain.WEEK,
            1,
            "2025-12-29",
            "2026-01-04",
            "2026-W01",
            id="week-jan1-starts-in-previous-year",
        ),
        # 2027-01-01 is a Friday: 2026 starts on a Thursday so it has 53 ISO weeks, and
        # Fri 2027-01-01 still belongs to 2026-W53, Mon 2026-12-28 .. Sun 2027-01-03.
        pytest.param(
            "2027-01-01",
            Grain.WEEK,
            1,
            "2026-12-28",
            "2027-01-03",
            "2026-W53",
            id="week-jan1-in-week-53-of-previous-year",
        ),
        # The mirror case: Mon 2024-12-30 is in ISO week 1 of 2025 (2025-01-02 is its Thu),
        # so the label's year (2025) differs from the calendar year (2024).
        pytest.param(
            "2024-12-30",
            Grain.WEEK,
            1,
            "2024-12-30",
            "2025-01-05",
            "2025-W01",
            id="week-late-december-in-next-iso-year",
        ),
        # Sunday ends the ISO week: Sun 2026-03-08 belongs to the week of Mon 2026-03-02
        # (Sun - 6 days), not the one starting the next day (a US-style week would say so).
        pytest.param(
            "2026-03-08",
            Grain.WEEK,
            1,
            "2026-03-02",
            "2026-03-08",
            "2026-W10",
            id="week-sunday-belongs-to-previous-monday",
        ),
        # The Monday of that same week maps to the same period (start inclusive).
        pytest.param(
            "2026-03-02",
            Grain.WEEK,
            1,
            "2026-03-02",
            "2026-03-08",
            "2026-W10",
            id="week-monday-is-start",
        ),
        # 2028 is a leap year (divisible by 4, not by 100): February ends on the 29th.
        pytest.param(
            "2028-02-15",
            Grain.MONTH,
            1,
            "2028-02-01",
            "2028-02-29",
            "2028-02",
            id="month-february-leap-year",
        ),
        # The leap day itself is the last day of its month, not a day of March.
        pytest.param(
            "2028-02-29",
            Grain.MONTH,
            1,
            "2028-02-01",
            "2028-02-29",
            "2028-02",
            id="month-leap-day",
        ),
        # 2026 is not a leap year: February ends on the 28th.
        pytest.param(
            "2026-02-10",
            Grain.MONTH,
            1,
            "2026-02-01",
            "2026-02-28",
            "2026-02",
            id="month-february-common-year",
        ),
        # December: the month end is computed as next-month-start - 1 day, across the year.
        pytest.param(
            "2026-12-31",
            Grain.MONTH,
            1,
            "2026-12-01",
            "2026-12-31",
            "2026-12",
            id="month-december-year-rollover",
        ),
        # Calendar quarters: November is month 11 -> (11-1)//3+1 = Q4, Oct 1 .. Dec 31.
        pytest.param(
            "2026-11-25",
            Grain.QUARTER,
            1,
            "2026-10-01",
            "2026-12-31",
            "2026 Q4",
            id="quarter-calendar-q4",
        ),
        # First day of a calendar year opens Q1 (Jan 1 .. Mar 31).
        pytest.param(
            "2026-01-01",
            Grain.QUARTER,
            1,
            "2026-01-01",
            "2026-03-31",
            "2026 Q1",
            id="quarter-calendar-q1",
        ),
        # Fiscal year starting in February: quarters are Feb-Apr, May-Jul, Aug-Oct, Nov-Jan.
        # January is (1-2) % 12 = 11 months into the fiscal year -> Q4 = 11//3+1, which started
        # in November of the previous calendar year: 2025-11-01 .. 2026-01-31, FY2025-26.
        pytest.param(
            "2026-01-15",
            Grain.QUARTER,
            2,
            "2025-11-01",
            "2026-01-31",
            "FY2025-26 Q4",
            id="quarter-fiscal-feb-q4-spans-calendar-years",
        ),
        # The fiscal year's first day opens Q1 of the next fiscal year, FY2026-27.
        pytest.param(
            "2026-02-01",
            Grain.QUARTER,
            2,
            "2026-02-01",
            "2026-04-30",
            "FY2026-27 Q1",
            id="quarter-fiscal-feb-first-day-q1",
        ),
        # April start (the demo plan): August is (8-4) = 4 months in -> Q2 = Jul 1 .. Sep 30.
        pytest.param(
            "2026-08-10",
            Grain.QUARTER,
            4,
            "2026-07-01",
            "2026-09-30",
            "FY2026-27 Q2",
            id="quarter-fiscal-april-q2",
        ),
        # April start, March: (3-4) % 12 = 11 months in -> Q4 of the fiscal year that began
        # in April 2026, although the date is in calendar 2027: label FY2026-27, not FY2027-28.
        pytest.param(
            "2027-03-31",
            Grain.QUARTER,
            4,
            "2027-01-01",
            "2027-03-31",
            "FY2026-27 Q4",
            id="quarter-fiscal-april-q4-next-calendar-year",
        ),
        # April start, the day before the fiscal year turns: still FY2025-26 Q4.
        pytest.param(
            "2026-03-31",
            Grain.QUARTER,
            4,
            "2026-01-01",
            "2026-03-31",
            "FY2025-26 Q4",
            id="quarter-fiscal-april-last-day-of-year",
        ),
        # December start (11 months before calendar): Dec 2026 opens FY2026-27 Q1
        # Dec 1 .. Feb 28 2027 (2027 not leap).
        pytest.param(
            "2027-02-28",
            Grain.QUARTER,
            12,
            "2026-12-01",
            "2027-02-28",
            "FY2026-27 Q1",
            id="quarter-fiscal-december-q1-ends-february",
        ),
    ],
)
def test_period_of(day, grain, fy_start, start, end, label):
    assert period_of(D(day), grain, fy_start) == Period(grain, D(start), D(end), label)


@pytest.mark.parametrize(
    ("period", "days"),
    [
        # A single day counts 1, not 0: `end` is inclusive.
        pytest.param(period_of(D("2026-03-08"), Grain.DAY), 1, id="day"),
        # Any ISO week, also one straddling two years, is Mon..Sun = 7 days.
        pytest.param(period_of(D("2027-01-01"), Grain.WEEK), 7, id="week-across-years"),
        # Leap February: 29 days; common February: 28.
        pytest.param(period_of(D("2028-02-10"), Grain.MONTH), 29, id="february-leap"),
        pytest.param(period_of(D("2026-02-10"), Grain.MONTH), 28, id="february-common"),
        # Calendar Q1 2026: 31 + 28 + 31 = 90; Q1 2028 (leap): 31 + 29 + 31 = 91.
        pytest.param(period_of(D("2026-02-10"), Grain.QUARTER), 90, id="q1-common"),
        pytest.param(period_of(D("2028-02-10"), Grain.QUARTER), 91, id="q1-leap"),
        # Fiscal (Feb start) Q4 = Nov + Dec + Jan = 30 + 31 + 31 = 92.
        pytest.param(period_of(D("2026-01-15"), Grain.QUARTER, 2), 92, id="fiscal-q4-nov-jan"),
    ],
)
def test_period_days(period, days):
    assert period.days == days


# --------------------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    ("day", "zone", "start", "end", "hours"),
    [
        # US DST starts Sun 2026-03-08 at 02:00 EST: local midnight is 05:00Z (UTC-5), the next
        # midnight is EDT 04:00Z (UTC-4); 05:00 -> 04:00 next day = 23 h.
        pytest.param(
            "2026-03-08",
            "America/Toronto",
            "2026-03-08T05:00:00",
            "2026-03-09T04:00:00",
            23,
            id="toronto-spring-forward-23h",
        ),
        # DST ends Sun 2026-11-01 at 02:00 EDT: midnight EDT 04:00Z -> next midnight EST 05:00Z
        # = 25 h.
        pytest.param(
            "2026-11-01",
            "America/Toronto",
            "2026-11-01T04:00:00",
            "2026-11-02T05:00:00",
            25,
            id="toronto-fall-back-25h",
        ),
        # A summer day without a change: EDT both ends, 04:00Z -> 04:00Z = 24 h.
        pytest.param(
            "2026-06-15",
            "America/Toronto",
            "2026-06-15T04:00:00",
            "2026-06-16T04:00:00",
            24,
            id="toronto-normal-day-24h",
        ),
        # EU DST starts on the last Sunday of March (2026-03-29): midnight CET (UTC+1) is
        # 23:00Z the day before, next midnight CEST (UTC+2) 22:00Z; 23:00 -> 22:00 = 23 h.
        pytest.param(
            "2026-03-29",
            "Europe/Paris",
            "2026-03-28T23:00:00",
            "2026-03-29T22:00:00",
            23,
            id="paris-spring-forward-23h",
        ),
        # EU DST ends on the last Sunday of October (2026-10-25): 22:00Z (CEST) -> 23:00Z
        # (CET) the same UTC date = 25 h.
        pytest.param(
            "2026-10-25",
            "Europe/Paris",
            "2026-10-24T22:00:00",
            "2026-10-25T23:00:00",
            25,
            id="paris-fall-back-25h",
        ),
        # Chile changes clocks *at midnight* (tzdata: Sun 2026-09-06 00:00 -04 -> 01:00 -03), so
        # local midnight does not exist that day: the day must start at the first real instant,
        # 00:00 -04 = 04:00Z (= 01:00 -03), and ends at next midnight -03 = 03:00Z -> 23 h.
        pytest.param(
            "2026-09-06",
            "America/Santiago",
            "2026-09-06T04:00:00",
            "2026-09-07T03:00:00",
            23,
            id="santiago-midnight-does-not-exist-23h",
        ),
        # Back on Sun 2026-04-05 00:00 -03 -> Sat 23:00 -04: Saturday 04-04 is the long day,
        # 00:00 -03 = 03:00Z -> 00:00 -04 on the 5th = 04:00Z next day = 25 h.
        pytest.param(
            "2026-04-04",
            "America/Santiago",
            "2026-04-04T03:00:00",
            "2026-04-05T04:00:00",
            25,
            id="santiago-midnight-repeated-25h",
        ),
    ],
)
def test_day_bounds_utc(day, zone, start, end, hours):
    got_start, got_end = day_bounds_utc(D(day), zone)
    assert (got_start, got_end) == (utc(start), utc(end))
    # Returned in UTC (not just equal instants in the local zone).
    assert got_start.utcoffset() == dt.timedelta(0)
    assert got_end.utcoffset() == dt.timedelta(0)
    assert got_end - got_start == dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # Before DST on 2026-03-08 Toronto is EST (UTC-5): 04:59:59Z = 23:59:59 on the 7th.
        pytest.param(
            utc("2026-03-08T04:59:59"), "America/Toronto", "2026-03-07", id="toronto-last-second"
        ),
        # One second later is local midnight 00:00 on the 8th: the UTC date is not shifted.
        pytest.param(
            utc("2026-03-08T05:00:00"), "America/Toronto", "2026-03-08", id="toronto-midnight"
        ),
        # After the change the offset is UTC-4: 2026-03-09T03:59:59Z = 23:59:59 on the 8th,
        # 04:00Z = midnight of the 9th (with the old -5 offset it would have been 23:00).
        pytest.param(
            utc("2026-03-09T03:59:59"), "America/Toronto", "2026-03-08", id="toronto-edt-eod"
        ),
        pytest.param(
            utc("2026-03-09T04:00:00"), "America/Toronto", "2026-03-09", id="toronto-edt-midnight"
        ),
        # Paris east of UTC: CET (UTC+1) 22:59:59Z = 23:59:59 on 03-28, 23:00Z = 03-29 00:00,
        # so here the local date is one day *later* than the UTC date.
        pytest.param(utc("2026-03-28T22:59:59"), "Europe/Paris", "2026-03-28", id="paris-cet-eod"),
        pytest.param(
            utc("2026-03-28T23:00:00"), "Europe/Paris", "2026-03-29", id="paris-cet-midnight"
        ),
        # On the DST day itself the day ends at 22:00Z (CEST, UTC+2), an hour earlier.
        pytest.param(utc("2026-03-29T21:59:59"), "Europe/Paris", "2026-03-29", id="paris-cest-eod"),
        pytest.param(
            utc("2026-03-29T22:00:00"), "Europe/Paris", "2026-03-30", id="paris-cest-midnight"
        ),
        # An aware instant in a third zone is converted, not read as wall time:
        # 09:00 in Tokyo (UTC+9) = 00:00Z = 19:00 EST on the previous day in Toronto.
        pytest.param(
            dt.datetime(2026, 3, 8, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
            "America/Toronto",
            "2026-03-07",
            id="other-zone-converted",
        ),
    ],
)
def test_local_date(instant, zone, expected):
    assert local_date(instant, zone) == D(expected)


@pytest.mark.parametrize(
    "function",
    [
        # A naive datetime has no instant: guessing UTC or local would shift days silently.
        pytest.param(local_date, id="local_date"),
        # last_closed_day goes through local_date, so it must refuse naive datetimes too.
        pytest.param(last_closed_day, id="last_closed_day"),
    ],
)
def test_naive_datetime_is_refused(function):
    with pytest.raises(ValueError, match="naive"):
        function(dt.datetime(2026, 3, 8, 12, 0), "America/Toronto")


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # 2026-11-26T03:00Z is 22:00 EST on the 25th in Toronto (UTC-5 after Nov 1), so today
        # is still the 25th and the last closed day is the 24th — not UTC date (26) - 1 = 25.
        pytest.param(
            utc("2026-11-26T03:00:00"), "America/Toronto", "2026-11-24", id="toronto-evening"
        ),
        # Two hours later (05:00Z) it is local midnight of the 26th: the 25th has closed.
        pytest.param(
            utc("2026-11-26T05:00:00"), "America/Toronto", "2026-11-25", id="toronto-midnight"
        ),
        # Paris is ahead of UTC: 23:30Z on 11-25 is 00:30 CET on 11-26 -> 11-25 is closed
        # although in UTC it is still the 25th.
        pytest.param(utc("2026-11-25T23:30:00"), "Europe/Paris", "2026-11-25", id="paris-ahead"),
    ],
)
def test_last_closed_day(now, zone, expected):
    assert last_closed_day(now, zone) == D(expected)


# --------------------------------------------------------------------------- build_calendar

CALENDAR_COLUMNS = ["date", "grain", "period_start", "period_end", "period_label"]


@pytest.fixture(scope="module")
def calendar() -> pd.DataFrame:
    # 2026-12-28 (Mon) .. 2027-01-05: 9 days across a year end, an ISO week 53 and a fiscal
    # (April start) quarter boundary (Q3 ends 12-31, Q4 starts 01-01).
    return build_calendar(D("2026-12-28"), D("2027-01-05"), fiscal_year_start_month=4)


def test_calendar_has_one_row_per_date_and_grain(calendar):
    assert list(calendar.columns) == CALENDAR_COLUMNS
    # 9 days x 4 grains = 36 rows, no duplicate (date, grain).
    assert len(calendar) == 9 * 4
    assert not calendar.duplicated(["date", "grain"]).any()
    assert sorted(calendar["grain"].unique()) == ["day", "month", "quarter", "week"]
    for grain in ("day", "week", "month", "quarter"):
        dates = calendar.loc[calendar["grain"] == grain, "date"].dt.date
        assert sorted(dates) == [D("2026-12-28") + dt.timedelta(days=i) for i in range(9)]


def test_calendar_date_columns_are_dates(calendar):
    # SQL joins need real dates (not object columns of Python dates or strings).
    for column in ("date", "period_start", "period_end"):
        assert calendar[column].dtype == "datetime64[s]", column


@pytest.mark.parametrize(
    ("day", "grain", "start", "end", "label"),
    [
        # Fri 2027-01-01 is in ISO week 2026-W53 (Mon 12-28 .. Sun 01-03).
        pytest.param("2027-01-01", "week", "2026-12-28", "2027-01-03", "2026-W53", id="w53"),
        # Mon 2027-01-04 starts 2027-W01.
        pytest.param("2027-01-04", "week", "2027-01-04", "2027-01-10", "2027-W01", id="w01"),
        # April fiscal start: December is (12-4) = 8 months in -> Q3 Oct 1 .. Dec 31.
        pytest.param("2026-12-31", "quarter", "2026-10-01", "2026-12-31", "FY2026-27 Q3", id="fq3"),
        # January is (1-4) % 12 = 9 months in -> Q4 Jan 1 .. Mar 31, same fiscal year.
        pytest.param("2027-01-01", "quarter", "2027-01-01", "2027-03-31", "FY2026-27 Q4", id="fq4"),
    ],
)
def test_calendar_rows_by_hand(calendar, day, grain, start, end, label):
    row = calendar[(calendar["date"] == pd.Timestamp(day)) & (calendar["grain"] == grain)]
    assert len(row) == 1
    (got,) = row.itertuples(index=False)
    assert got.period_start.date() == D(start)
    assert got.period_end.date() == D(end)
    assert got.period_label == label


@pytest.mark.parametrize("grain", [Grain.WEEK, Grain.QUARTER])
def test_calendar_rows_agree_with_period_of(calendar, grain):
    # The SQL calendar and the Python scorer must bucket every date the same way.
    rows = calendar[calendar["grain"] == grain.value]
    for row in rows.itertuples(index=False):
        expected = period_of(row.date.date(), grain, 4)
        assert (row.period_start.date(), row.period_end.date(), row.period_label) == (
            expected.start,
            expected.end,
            expected.label,
        )


def test_single_day_calendar():
    # first == last is a valid one-day calendar: 1 day x 4 grains.
    frame = build_calendar(D("2028-02-29"), D("2028-02-29"))
    assert len(frame) == 4
    month = frame[frame["grain"] == "month"].iloc[0]
    assert month["period_end"] == pd.Timestamp("2028-02-29")


def test_calendar_ending_before_it_starts_is_refused():
    # An inverted range is a caller bug; an empty frame would hide it.
    with pytest.raises(ValueError, match="before it starts"):
        build_calendar(D("2026-01-02"), D("2026-01-01"))
