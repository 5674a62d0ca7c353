"""Tests for reading GA4-style CSV exports into typed traffic/event frames and the quarantine."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kpi_pipeline.plan.csv_config import CsvColumns, CsvSource
from kpi_pipeline.sources.csv_export import (
    CSV_EVENTS,
    CSV_TRAFFIC,
    CsvExtract,
    CsvFormatError,
    read_csv_exports,
)
from kpi_pipeline.sources.quarantine import QUARANTINE

NOT_SET = "(not set)"
JAN4, JAN5, JAN6, JAN7, JAN8 = (dt.date(2026, 1, d) for d in (4, 5, 6, 7, 8))
HEADER = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"
GOOD_JAN5 = "2026-01-05,google,organic,,/home,desktop,10,5,1"
GOOD_JAN7 = "2026-01-07,newsletter,email,spring,/donate,mobile,7,7,2"


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _lines(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


def _source(**overrides: Any) -> CsvSource:
    return CsvSource(**{"id": "ga4", "path": "*.csv", **overrides})


def _read(
    base_dir: Path, source: CsvSource | None = None, first: dt.date = JAN5, last: dt.date = JAN7
) -> CsvExtract:
    return read_csv_exports(source or _source(), base_dir, first, last)


def _plain(value: Any) -> Any:
    """Scalars comparable with ==: NaT/NA/NaN -> None, Timestamp -> date, numpy -> Python."""
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(frame: pd.DataFrame, columns: list[str] | None = None) -> list[tuple]:
    frame = frame[columns or list(frame.columns)]
    return [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]


def _abs(path: Path) -> str:
    return str(path.resolve())


# --- A clean file -----------------------------------------------------------------------


# Why: pins the exact shape, types, (not set) default, file/line provenance and event pivot.
def test_clean_file_loads_typed_traffic_and_long_events(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ga4.csv",
        _lines(
            f"{HEADER},form_start,form_submit",
            "2026-01-05,google,organic,,/home,desktop,120,80,3.5,4,0",
            "2026-01-06,mail,email,spring,/give,mobile,30,30,0,0,2",
        ),
    )
    source = _source(event_columns={"form_start": "form_start", "form_submit": "form_submit"})
    extract = _read(tmp_path, source)
    shown = _abs(path)

    assert Path(shown).is_absolute()
    assert extract.files == (shown,)
    assert list(extract.traffic.columns) == CSV_TRAFFIC.column_names
    assert _rows(extract.traffic) == [
        ("ga4", JAN5, "google", "organic", "(not set)", "/home", "desktop", 120, 80, 3.5, shown, 2),
        ("ga4", JAN6, "mail", "email", "spring", "/give", "mobile", 30, 30, 0.0, shown, 3),
    ]
    dtypes = extract.traffic.dtypes.astype(str).to_dict()
    assert {
        c: dtypes[c] for c in ("date", "sessions", "engaged_sessions", "key_events", "line")
    } == {
        "date": "datetime64[s]",
        "sessions": "int64",
        "engaged_sessions": "int64",
        "key_events": "float64",
        "line": "int64",
    }
    assert list(extract.events.columns) == CSV_EVENTS.column_names
    assert _rows(extract.events) == [
        (
            "ga4",
            JAN5,
            "google",
            "organic",
            NOT_SET,
            "/home",
            "desktop",
            "form_start",
            4.0,
            shown,
            2,
        ),
        ("ga4", JAN6, "mail", "email", "spring", "/give", "mobile", "form_submit", 2.0, shown, 3),
    ]
    assert str(extract.events["event_count"].dtype) == "float64"
    assert extract.quarantine.empty
    assert list(extract.quarantine.columns) == QUARANTINE.column_names
    assert extract.days_without_rows == (JAN7,)


# --- Files and date range ---------------------------------------------------------------


# Why: plans point at exports outside their own folder ("../") or by absolute path.
@pytest.mark.parametrize("absolute", [False, True], ids=["relative-dotdot", "absolute"])
def test_glob_relative_to_base_dir_and_range_filter(tmp_path: Path, absolute: bool) -> None:
    base_dir = tmp_path / "plan"
    base_dir.mkdir()
    exports = tmp_path / "exports"
    first = _write(
        exports / "ga4_a.csv",
        _lines(
            HEADER,
            "2026-01-04,google,organic,,/home,desktop,n/a,5,1",  # out of range: ignored, bad or not
            "2026-01-04,google,organic,,/home,desktop,10,5,1",
            GOOD_JAN5,
        ),
    )
    second = _write(
        exports / "ga4_b.csv",
        _lines(HEADER, GOOD_JAN7, "2026-01-08,google,organic,,/home,desktop,-1,5,1"),
    )
    _write(exports / "notes.txt", "not an export\n")
    pattern = str(exports / "*.csv") if absolute else "../exports/*.csv"

    extract = _read(base_dir, _source(path=pattern))

    assert extract.files == (_abs(first), _abs(second))
    assert _rows(extract.traffic, ["date", "source", "file", "line"]) == [
        (JAN5, "google", _abs(first), 4),
        (JAN7, "newsletter", _abs(second), 2),
    ]
    assert extract.quarantine.empty


# Why: a glob metacharacter in the plan's folder must not be read as part of the pattern.
def test_base_dir_with_glob_metacharacters(tmp_path: Path) -> None:
    base_dir = tmp_path / "exports[2026]"
    path = _write(base_dir / "ga4.csv", _lines(HEADER, GOOD_JAN5))

    extract = _read(base_dir)

    assert extract.files == (_abs(path),)
    assert _rows(extract.traffic, ["date", "line"]) == [(JAN5, 2)]


# Why: the run reports days with no traffic row; a quarantined row does not fill its day.
def test_days_without_rows(tmp_path: Path) -> None:
    _write(
        tmp_path / "ga4.csv",
        _lines(HEADER, GOOD_JAN5, GOOD_JAN7, "2026-01-08,google,organic,,/home,desktop,n/a,5,1"),
    )

    extract = _read(tmp_path, first=JAN4, last=JAN8)

    assert extract.days_without_rows == (JAN4, JAN6, JAN8)
    assert _rows(extract.quarantine, ["partition_date", "line"]) == [(JAN8, 4)]


# Why: a freshly created export (header only, or not yet written) is not an error.
@pytest.mark.parametrize(
    "content", [HEADER + ",form_start\n", ""], ids=["header-only", "zero-bytes"]
)
def test_empty_file_loads_nothing(tmp_path: Path, content: str) -> None:
    path = _write(tmp_path / "ga4.csv", content)

    extract = _read(tmp_path, _source(event_columns={"form_start": "form_start"}))

    assert extract.files == (_abs(path),)
    assert extract.traffic.empty
    assert list(extract.traffic.columns) == CSV_TRAFFIC.column_names
    assert extract.events.empty
    assert list(extract.events.columns) == CSV_EVENTS.column_names
    assert extract.quarantine.empty
    assert extract.days_without_rows == (JAN5, JAN6, JAN7)


# --- Quarantine -------------------------------------------------------------------------

MAPPED_HEADER = (
    "Day,session_source,session_medium,session_campaign,page,device_category,"
    "visits,engaged_visits,conversions,Form submits"
)
MAPPED = {
    "columns": CsvColumns(
        date="Day",
        source="session_source",
        medium="session_medium",
        campaign="session_campaign",
        landing_page="page",
        device="device_category",
        sessions="visits",
        engaged_sessions="engaged_visits",
        key_events="conversions",
    ),
    "event_columns": {"form_submit": "Form submits"},
}


# Why: every rejection reason at once, with the file's own headers and true line numbers.
def test_quarantine_reasons_lines_and_columns(tmp_path: Path) -> None:
    first = _write(
        tmp_path / "ga4_a.csv",
        b"\n".join(
            [
                MAPPED_HEADER.encode(),
                b"2026-01-05,google,organic,,/home,desktop,10,5,1,1",  # 2 good
                b"2026-01-05,bing,cpc,brand,/home,desktop,n/a,5,1,0",  # 3
                b"2026-01-05,google,cpc,brand,/home,desktop,10,5,1,-2",  # 4
                b"2026-01-06,google,organic,,/about,desktop,12.5,5,1,0",  # 5
                b"2026-01-06,google,organic,,/contact,desktop,3,5,0,0",  # 6
                b"2026-02-30,google,organic,,/home,desktop,10,5,1,0",  # 7
                b"2026-01-06,google,organic",  # 8
                b"2026-01-06,google,organic,,/caf\xff,desktop,4,2,0,0",  # 9
                b"2026-01-07,newsletter,email,spring,/donate,mobile,7,7,2,1",  # 10 good
                b"",
            ]
        ),
    )
    second = _write(
        tmp_path / "ga4_b.csv",
        _lines(
            MAPPED_HEADER,
            "2026-01-05,google,organic,,/home,desktop,99,9,0,0",  # duplicate of ga4_a.csv:2
            "2026-01-06,google,organic,,/home,desktop,8,4,0,0",  # good
        ),
    )
    a, b = _abs(first), _abs(second)

    extract = _read(tmp_path, _source(**MAPPED))

    assert _rows(extract.quarantine) == [
        ("ga4", JAN5, a, 3, "visits", "not a number: 'n/a'",
         "2026-01-05,bing,cpc,brand,/home,desktop,n/a,5,1,0"),
        ("ga4", JAN5, a, 4, "Form submits", "negative count: '-2'",
         "2026-01-05,google,cpc,brand,/home,desktop,10,5,1,-2"),
        ("ga4", JAN6, a, 5, "visits", "not a whole number: '12.5'",
         "2026-01-06,google,organic,,/about,desktop,12.5,5,1,0"),
        ("ga4", JAN6, a, 6, "engaged_visits", "engaged_visits exceeds visits",
         "2026-01-06,google,organic,,/contact,desktop,3,5,0,0"),
        ("ga4", None, a, 7, "Day", "cannot read date '2026-02-30' with format %Y-%m-%d",
         "2026-02-30,google,organic,,/home,desktop,10,5,1,0"),
        ("ga4", None, a, 8, None, "expected 10 fields, found 3", "2026-01-06,google,organic"),
        ("ga4", JAN6, a, 9, "raw_text", "undecodable bytes for encoding utf-8",
         "2026-01-06,google,organic,,/caf\ufffd,desktop,4,2,0,0"),
        ("ga4", JAN5, b, 2, None, f"duplicate of the row at {a}:2",
         "2026-01-05,google,organic,,/home,desktop,99,9,0,0"),
    ]  # fmt: skip
    assert str(extract.quarantine["partition_date"].dtype) == "datetime64[s]"
    assert _rows(extract.traffic, ["date", "source", "sessions", "file", "line"]) == [
        (JAN5, "google", 10, a, 2),
        (JAN7, "newsletter", 7, a, 10),
        (JAN6, "google", 8, b, 3),
    ]
    assert _rows(extract.events, ["date", "event_name", "event_count", "file", "line"]) == [
        (JAN5, "form_submit", 1.0, a, 2),
        (JAN7, "form_submit", 1.0, a, 10),
    ]


# Why: one bad row among good ones must be quarantined alone, whatever its kind.
@pytest.mark.parametrize(
    ("bad_row", "expected"),
    [
        pytest.param(
            b"2026-01-06,bing,cpc,x,/p,mobile,n/a,5,1",
            (JAN6, "sessions", "not a number: 'n/a'"),
            id="not-a-number",
        ),
        pytest.param(
            b"2026-01-06,bing,cpc,x,/p,mobile,10,-1,1",
            (JAN6, "engaged_sessions", "negative count: '-1'"),
            id="negative",
        ),
        pytest.param(
            b"2026-01-06,bing,cpc,x,/p,mobile,12.5,5,1",
            (JAN6, "sessions", "not a whole number: '12.5'"),
            id="fractional",
        ),
        pytest.param(
            b"2026-01-06,bing,cpc,x,/p,mobile,3,5,1",
            (JAN6, "engaged_sessions", "engaged_sessions exceeds sessions"),
            id="engaged-exceeds-sessions",
        ),
        pytest.param(
            b"2026-01-06,bing,cpc,x,/p\xff,mobile,3,1,1",
            (JAN6, "raw_text", "undecodable bytes for encoding utf-8"),
            id="undecodable",
        ),
        pytest.param(
            b"2026-02-30,bing,cpc,x,/p,mobile,3,1,1",
            (None, "date", "cannot read date '2026-02-30' with format %Y-%m-%d"),
            id="impossible-date",
        ),
        pytest.param(
            b"2026-01-06,bing,cpc",
            (None, None, "expected 9 fields, found 3"),
            id="wrong-field-count",
        ),
    ],
)
def test_single_bad_row_among_good_rows(
    tmp_path: Path, bad_row: bytes, expected: tuple[Any, ...]
) -> None:
    path = _write(
        tmp_path / "ga4.csv",
        b"\n".join([HEADER.encode(), GOOD_JAN5.encode(), bad_row, GOOD_JAN7.encode(), b""]),
    )
    raw = bad_row.decode("utf-8", errors="replace")

    extract = _read(tmp_path)

    assert _rows(extract.quarantine) == [("ga4", expected[0], _abs(path), 3, *expected[1:], raw)]
    assert _rows(extract.traffic, ["date", "line"]) == [(JAN5, 2), (JAN7, 4)]


# Why: a file whose every row has an unreadable date must quarantine them, not crash.
def test_file_with_only_unreadable_dates(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ga4.csv", _lines(HEADER, "2026-02-30,google,organic,,/x,desktop,1,1,0")
    )

    extract = _read(tmp_path)

    assert extract.traffic.empty
    assert _rows(extract.quarantine, ["partition_date", "file", "line", "column_name"]) == [
        (None, _abs(path), 2, "date")
    ]


# Why: csv rows spanning lines must not shift the line numbers of the rows after them.
@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_line_numbers_after_quoted_newline(tmp_path: Path, eol: str) -> None:
    path = _write(
        tmp_path / "ga4.csv",
        eol.join(
            [
                HEADER,
                f'2026-01-05,google,organic,,"/a{eol}b",desktop,10,5,1',  # lines 2-3
                "2026-01-06,google,organic,,/c,desktop,4,2,0",  # line 4
                "2026-01-07,google,organic,,/d,desktop,n/a,2,0",  # line 5
                "",
            ]
        ),
    )

    extract = _read(tmp_path)

    assert _rows(extract.traffic, ["date", "landing_page", "line"]) == [
        (JAN5, f"/a{eol}b", 2),
        (JAN6, "/c", 4),
    ]
    assert _rows(extract.quarantine, ["file", "line", "column_name"]) == [
        (_abs(path), 5, "sessions")
    ]


# --- Formats ----------------------------------------------------------------------------


# Why: exports with renamed, reordered and extra columns map through the plan's CsvColumns.
def test_column_mapping_with_other_headers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ga4.csv",
        _lines(
            "visits,Day,page,session_source,ignored,session_medium,device_category,"
            "session_campaign,Form submits,conversions,engaged_visits",
            "12,2026-01-06,/home,google,zzz,organic,desktop,winter,3,2.5,9",
        ),
    )

    extract = _read(tmp_path, _source(**MAPPED))

    shown = _abs(path)
    assert _rows(extract.traffic) == [
        ("ga4", JAN6, "google", "organic", "winter", "/home", "desktop", 12, 9, 2.5, shown, 2)
    ]
    assert _rows(extract.events, ["event_name", "event_count", "line"]) == [("form_submit", 3.0, 2)]


# Why: European exports use ";" with "," decimals and "." thousands separators.
def test_semicolon_decimal_comma_thousands_dot(tmp_path: Path) -> None:
    _write(
        tmp_path / "ga4.csv",
        _lines(
            HEADER.replace(",", ";") + ";form_start",
            "2026-01-05;google;organic;;/home;desktop;1.234;1.000;3,5;2,5",
        ),
    )
    source = _source(
        delimiter=";", decimal=",", thousands=".", event_columns={"form_start": "form_start"}
    )

    extract = _read(tmp_path, source)

    assert _rows(extract.traffic, ["sessions", "engaged_sessions", "key_events", "line"]) == [
        (1234, 1000, 3.5, 2)
    ]
    assert _rows(extract.events, ["event_name", "event_count"]) == [("form_start", 2.5)]
    assert extract.quarantine.empty


# Why: a latin-1 export must decode accents, not quarantine them as undecodable.
def test_latin1_encoding(tmp_path: Path) -> None:
    _write(
        tmp_path / "ga4.csv", _lines(HEADER, GOOD_JAN5.replace("/home", "/café")).encode("latin-1")
    )

    extract = _read(tmp_path, _source(encoding="latin-1"))

    assert _rows(extract.traffic, ["landing_page", "line"]) == [("/café", 2)]
    assert extract.quarantine.empty


# Why: Excel writes a UTF-8 BOM, which must not hide the first header.
def test_utf8_bom_before_header(tmp_path: Path) -> None:
    _write(tmp_path / "ga4.csv", b"\xef\xbb\xbf" + _lines(HEADER, GOOD_JAN5).encode())

    extract = _read(tmp_path)

    assert _rows(extract.traffic, ["date", "source", "line"]) == [(JAN5, "google", 2)]


# Why: GA4's own exports write dates as 20260105.
def test_ga4_compact_date_format(tmp_path: Path) -> None:
    _write(tmp_path / "ga4.csv", _lines(HEADER, GOOD_JAN5.replace("2026-01-05", "20260105")))

    extract = _read(tmp_path, _source(date_format="%Y%m%d"))

    assert _rows(extract.traffic, ["date", "line"]) == [(JAN5, 2)]
    assert extract.quarantine.empty


# Why: a header that does not match the mapping fails the whole file with a locatable message.
def test_missing_mapped_column_raises(tmp_path: Path) -> None:
    header = "date,source,medium,campaign,landing_page,device,sessions,key_events"
    path = _write(
        tmp_path / "ga4.csv", _lines(header, "2026-01-05,google,organic,,/home,desktop,10,1")
    )

    with pytest.raises(CsvFormatError) as caught:
        _read(tmp_path)

    assert str(caught.value) == (
        f"{_abs(path)}:1: the header does not match the mapping of source 'ga4': missing "
        "engaged_sessions (one of: engaged_sessions, engaged sessions, sessions avec engagement)."
        " Found: date, source, medium, campaign, landing_page, device, sessions, key_events"
    )
