"""Hostile CSV input: every case gives a located error or a counted warning, never a traceback.

Files are streamed and typed in chunks (`CHUNK_ROWS`); the tests lower the chunk size so a
few rows span several chunks, and check the result equals a one-chunk read row for row.
Memory and time on a 200 MB file are measured by bench/csv_memory.py, not here.
"""

from __future__ import annotations

import codecs
import datetime as dt
import logging
import math
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from kpi_pipeline.plan.csv_config import CsvSource
from kpi_pipeline.plan.session_csv_config import FlagColumn, SessionCsvSource, SessionPeriod
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.sources import csv_export, session_csv, text_files
from kpi_pipeline.sources.csv_export import CsvFormatError, read_csv_exports
from kpi_pipeline.sources.quarantine import QUARANTINE, RAW_TEXT_LIMIT
from kpi_pipeline.sources.session_csv import read_session_csvs
from kpi_pipeline.warehouse.engine import read_frame_once

JAN4, JAN5, JAN6, JAN7, JAN8, JAN9 = (dt.date(2026, 1, d) for d in (4, 5, 6, 7, 8, 9))
HEADER = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"


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
    frame = frame[columns or list(frame.columns)].astype(object)
    return [tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)]


def _write(path: Path, content: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path.resolve())


def _lines(*lines: str) -> str:
    return "".join(f"{line}\n" for line in lines)


# --- Streaming in chunks ----------------------------------------------------------------

CHUNKED_A = _lines(
    f"{HEADER},form_submit",
    "2026-01-05,google,organic,,/home,desktop,10,5,1,1",  # 2 good
    "2026-01-04,google,organic,,/home,desktop,10,5,1,0",  # 3 good, before the run
    "2026-01-05,bing,cpc,brand,/home,desktop,n/a,5,1,0",  # 4 quarantined
    "2026-01-08,bing,cpc,brand,/home,desktop,n/a,5,1,0",  # 5 bad, after the run
    "",  # 6 blank
    "2026-02-30,google,organic,,/x,desktop,1,1,0,0",  # 7 no date: quarantined
    "2026-01-06,google,organic",  # 8 three fields
    '2026-01-06,google,organic,,"/a',  # 9-10 good: a quoted line break
    'b",mobile,4,2,0,2',
    "Total,,,,,,15,8,2,3",  # 11 the UI's totals
    "2026-01-07,newsletter,email,spring,/donate,mobile,7,7,2,0",  # 12 good, no event
    "2026-01-06,google,organic,,/about,desktop,3,5,0,0",  # 13 engaged above sessions
)
CHUNKED_B = _lines(
    f"{HEADER},form_submit",
    "2026-01-05,google,organic,,/home,desktop,99,9,0,0",  # 2 duplicate of a.csv:2
    "2026-01-06,google,organic,,/home,desktop,8,4,0,1",  # 3 good
    "2026-01-09,google,organic,,/home,desktop,8,4,0,1",  # 4 good, after the run
)


def _chunked_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int):
    monkeypatch.setattr(csv_export, "CHUNK_ROWS", chunk_rows)
    source = CsvSource(id="ga4", path="*.csv", event_columns={"form_submit": "form_submit"})
    return read_csv_exports(source, tmp_path, JAN5, JAN7)


# Why: a file is typed a chunk at a time; rows, events, quarantine and line numbers must be
# those of reading it whole, including duplicates found across chunks and files.
def test_a_read_in_many_chunks_gives_the_rows_of_a_whole_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _write(tmp_path / "a.csv", CHUNKED_A)
    b = _write(tmp_path / "b.csv", CHUNKED_B)

    extract = _chunked_read(tmp_path, monkeypatch, chunk_rows=2)

    assert _rows(
        extract.traffic, ["date", "source", "landing_page", "sessions", "file", "line"]
    ) == [
        (JAN5, "google", "/home", 10, a, 2),
        (JAN6, "google", "/a\nb", 4, a, 9),
        (JAN7, "newsletter", "/donate", 7, a, 12),
        (JAN6, "google", "/home", 8, b, 3),
    ]
    assert _rows(extract.events, ["date", "event_name", "event_count", "file", "line"]) == [
        (JAN5, "form_submit", 1.0, a, 2),
        (JAN6, "form_submit", 2.0, a, 9),
        (JAN6, "form_submit", 1.0, b, 3),
    ]
    assert list(extract.quarantine.columns) == QUARANTINE.column_names
    assert _rows(extract.quarantine) == [
        ("ga4", JAN5, a, 4, "sessions", "not a number: 'n/a'",
         "2026-01-05,bing,cpc,brand,/home,desktop,n/a,5,1,0"),
        ("ga4", None, a, 7, "date", "cannot read date '2026-02-30' with format %Y-%m-%d",
         "2026-02-30,google,organic,,/x,desktop,1,1,0,0"),
        ("ga4", None, a, 8, None, "expected 10 fields, found 3", "2026-01-06,google,organic"),
        ("ga4", JAN6, a, 13, "engaged_sessions", "engaged_sessions exceeds sessions",
         "2026-01-06,google,organic,,/about,desktop,3,5,0,0"),
        ("ga4", JAN5, b, 2, None, f"duplicate of the row at {a}:2",
         "2026-01-05,google,organic,,/home,desktop,99,9,0,0"),
    ]  # fmt: skip
    # a.csv:3 (the 4th), a.csv:5 (the 8th) and b.csv:4 (the 9th) lie outside the 5th..7th.
    assert extract.rows_outside_days == 3
    assert extract.file_days == {a: (JAN4, JAN8), b: (JAN5, JAN9)}
    assert extract.days_without_rows == ()
    assert extract.warnings == ()

    whole = _chunked_read(tmp_path, monkeypatch, chunk_rows=1_000_000)
    for name in ("traffic", "events", "quarantine"):
        pd.testing.assert_frame_equal(getattr(extract, name), getattr(whole, name))
    assert (whole.rows_outside_days, whole.file_days) == (3, extract.file_days)


# Why: rows dated outside the run were dropped without a word; they are now counted.
def test_rows_outside_the_run_are_counted_not_loaded(tmp_path: Path) -> None:
    _write(
        tmp_path / "ga4.csv",
        _lines(
            HEADER,
            "2026-01-04,google,organic,,/,desktop,1,1,0",  # before
            "2026-01-04,google,organic,,/x,desktop,n/a,1,0",  # before, and bad
            "2026-01-05,google,organic,,/,desktop,2,1,0",  # in
            "2026-01-06,google,organic,,/,desktop,-3,1,0",  # in, bad
            "2026-13-01,google,organic,,/,desktop,4,1,0",  # no date: not outside, quarantined
            "2026-01-08,google,organic,,/,desktop,5,1,0",  # after
            "2026-01-09,google,organic",  # too few fields: no date, quarantined
        ),
    )

    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN6)

    assert extract.rows_outside_days == 3
    assert _rows(extract.traffic, ["date", "line"]) == [(JAN5, 4)]
    assert _rows(extract.quarantine, ["partition_date", "line"]) == [
        (JAN6, 5),
        (None, 6),
        (None, 8),
    ]


# --- Unclosed quotes --------------------------------------------------------------------


# Why: an unclosed quote swallowed the lines after it into one quarantined row, silently.
def test_an_unclosed_quote_names_the_lines_it_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_export, "CHUNK_ROWS", 2)
    path = _write(
        tmp_path / "ga4.csv",
        _lines(
            HEADER,
            "2026-01-05,google,organic,,/,desktop,10,5,1",  # 2
            '2026-01-05,google,organic,,"/oops,desktop,10,5,1',  # 3: the quote never closes
            "2026-01-06,google,organic,,/a,desktop,4,2,0",  # 4 swallowed
            '2026-01-07,google,organic,,/b,desktop",3,1,0',  # 5 a stray quote ends the field
            "2026-01-07,google,organic,,/c,desktop,2,1,0",  # 6 read again
        ),
    )
    reason = "an unclosed quote at line 3 swallowed lines 3..5 into one row (8 fields, expected 9)"

    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN7)

    assert _rows(extract.traffic, ["landing_page", "line"]) == [("/", 2), ("/c", 6)]
    assert _rows(extract.quarantine, ["partition_date", "line", "column_name", "reason"]) == [
        (None, 3, None, reason)
    ]
    assert extract.quarantine["raw_text"][0].startswith("2026-01-05,google,organic,,/oops,desk")
    assert extract.warnings == (f"{path}:3: {reason}; the row is quarantined",)


# Why: a quote left open in the last field runs to the end of the file with the right count.
def test_an_unclosed_quote_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ga4.csv",
        _lines(
            HEADER,
            "2026-01-05,google,organic,,/,desktop,10,5,1",  # 2
            '2026-01-06,google,organic,,/x,desktop,10,5,"1',  # 3: opens the last field
            "2026-01-07,google,organic,,/y,desktop,4,2,0",  # 4 swallowed
        ),
    )
    reason = (
        "an unclosed quote at line 3 swallowed lines 3..4 into one row "
        "(the quote was still open at the end of the file)"
    )

    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN7)

    assert _rows(extract.traffic, ["line"]) == [(2,)]
    assert _rows(extract.quarantine, ["line", "reason"]) == [(3, reason)]
    assert extract.warnings == (f"{path}:3: {reason}; the row is quarantined",)


# Why: a value written on several lines, quoted as it should be, is a value, even last.
def test_a_quoted_value_on_several_lines_is_not_an_unclosed_quote(tmp_path: Path) -> None:
    _write(
        tmp_path / "ga4.csv",
        _lines(
            HEADER,
            '2026-01-05,google,organic,,"/a',  # 2-3
            'b",desktop,10,5,1',
            '2026-01-06,"google, inc",organic,,"/c',  # 4-6
            "",
            'd, e",desktop,4,2,0',
        ),
    )

    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN7)

    assert _rows(extract.traffic, ["source", "landing_page", "line"]) == [
        ("google", "/a\nb", 2),
        ("google, inc", "/c\n\nd, e", 4),
    ]
    assert extract.quarantine.empty
    assert extract.warnings == ()


# Why: an unclosed quote early in a big file reaches the csv field limit: the whole file
# fails (it cannot be split into rows) with the line the quote opened on, at once.
def test_an_unclosed_quote_before_a_long_tail_fails_the_file_at_its_line(tmp_path: Path) -> None:
    rows = ["2026-01-06,google,organic,,/a,desktop,4,2,0"] * 20_000
    path = _write(
        tmp_path / "ga4.csv",
        _lines(HEADER, '2026-01-05,google,organic,,"/oops,desktop,10,5,1', *rows),
    )

    with pytest.raises(CsvFormatError) as caught:
        read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN7)

    message = str(caught.value)
    assert message.startswith(f"{path}:2: cannot split the file into rows (field larger than")
    assert "an unclosed quote at line 2 probably swallowed the lines after it" in message


# --- Encodings --------------------------------------------------------------------------

UTF_TEXT = HEADER + "\r\n2026-01-05,google,organic,,/café,desktop,10,5,1\r\n"


# Why: Excel's "Unicode text" and some BI tools write UTF-16 with a byte-order mark; it was
# reported as a header mismatch. The mark decides, whatever the plan declares.
@pytest.mark.parametrize(
    ("codec", "mark"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
    ],
)
@pytest.mark.parametrize("declared", ["utf-8", "auto", "latin-1"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(
    tmp_path: Path, codec: str, mark: bytes, declared: str
) -> None:
    _write(tmp_path / "ga4.csv", mark + UTF_TEXT.encode(codec))

    extract = read_csv_exports(
        CsvSource(id="ga4", path="*.csv", encoding=declared), tmp_path, JAN5, JAN5
    )

    assert _rows(extract.traffic, ["date", "landing_page", "sessions", "line"]) == [
        (JAN5, "/café", 10, 2)
    ]
    assert extract.quarantine.empty
    assert extract.formats[0].encoding == codec


# Why: without a mark, UTF-16 read as bytes gives NUL-riddled headers; say what it probably
# is and which setting reads it, located at the file's first line.
@pytest.mark.parametrize(
    ("codec", "name"), [("utf-16-le", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE")]
)
@pytest.mark.parametrize("declared", ["utf-8", "auto"])
def test_utf16_without_a_mark_fails_with_the_encoding_to_declare(
    tmp_path: Path, codec: str, name: str, declared: str
) -> None:
    path = _write(tmp_path / "ga4.csv", UTF_TEXT.encode(codec))
    source = CsvSource(id="ga4", path="*.csv", encoding=declared)

    with pytest.raises(CsvFormatError) as caught:
        read_csv_exports(source, tmp_path, JAN5, JAN5)

    message = str(caught.value)
    assert message.startswith(f"{path}:1: the file is probably {name} without a byte-order mark")
    assert f"which `encoding: {declared}` cannot read" in message
    assert f"declare its encoding for this source in the plan: `encoding: {codec}`" in message
    # Declared as the message says, it reads.
    fixed = read_csv_exports(source.model_copy(update={"encoding": codec}), tmp_path, JAN5, JAN5)
    assert _rows(fixed.traffic, ["landing_page", "line"]) == [("/café", 2)]
    # Among other files, the run lists it and reads the others.
    collected = read_csv_exports(source, tmp_path, JAN5, JAN5, collect_errors=True)
    assert collected.file_errors == {path: message}


# --- Junk -------------------------------------------------------------------------------


# Why: a junk file must not be kept whole in the quarantine: raw_text is cut, and says so.
def test_a_long_junk_row_keeps_only_the_start_of_its_text(tmp_path: Path) -> None:
    junk = "x" + "abcdefghij;:'" * 500  # 6,501 characters, no delimiter: one field
    _write(tmp_path / "ga4.csv", _lines(HEADER, junk, "2026-01-05,google,organic,,/,desktop,1,1,0"))

    extract = read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN5)

    ((line, reason, raw_text),) = _rows(extract.quarantine, ["line", "reason", "raw_text"])
    assert line == 2
    assert reason == (
        f"expected 9 fields, found 1 (raw_text cut to its first {RAW_TEXT_LIMIT} of 6501 "
        "characters)"
    )
    assert raw_text == junk[:RAW_TEXT_LIMIT]
    assert _rows(extract.traffic, ["line"]) == [(3,)]


# Why: a spreadsheet or other binary file saved under a .csv name is not read as junk rows.
def test_a_binary_file_fails_with_a_clear_message(tmp_path: Path) -> None:
    # 8 of every 12 bytes are NUL: 4,000 NUL bytes among 4 + 6,000.
    data = b"PK\x03\x04" + bytes([0, 0, 8, 0, 0, 0, 33, 0, 255, 17, 0, 0]) * 500
    path = _write(tmp_path / "ga4.csv", data)

    with pytest.raises(CsvFormatError) as caught:
        read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN5)

    assert str(caught.value) == (
        f"{path}:1: the file is not text that `encoding: utf-8` can read (4000 of its first "
        "6004 bytes are NUL); is it a spreadsheet or another binary file saved under a .csv "
        "name? Export it as CSV"
    )


# Why: a junk first line is reported as a header mismatch, with the junk cut short.
def test_a_junk_header_is_quoted_briefly(tmp_path: Path) -> None:
    path = _write(tmp_path / "ga4.csv", _lines("x" * 5_000, "y"))

    with pytest.raises(CsvFormatError) as caught:
        read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN5)

    message = str(caught.value)
    assert message.startswith(f"{path}:1: the header does not match the mapping of source")
    assert message.endswith("Found: " + "x" * 299 + "\u2026")


# Why: a file without line breaks (a dump, minified JSON) must not be read as one huge line.
@pytest.mark.parametrize(
    ("rows", "line"),
    [
        pytest.param(
            [HEADER, "2026-01-05,google,organic,,/,desktop,1,1,0", "x," * 600], 3, id="row"
        ),
        pytest.param(["x," * 600, "2026-01-05,google"], 1, id="header"),
    ],
)
def test_a_line_too_long_for_csv_fails_the_file_at_that_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[str], line: int
) -> None:
    monkeypatch.setattr(text_files, "MAX_LINE_CHARS", 1_000)
    path = _write(tmp_path / "ga4.csv", "\n".join(rows))

    with pytest.raises(CsvFormatError) as caught:
        read_csv_exports(CsvSource(id="ga4", path="*.csv"), tmp_path, JAN5, JAN5)

    assert str(caught.value) == (
        f"{path}:{line}: line {line} is longer than 1,000 characters, which no CSV export "
        "has: is this file made of lines?"
    )


# --- Session-level CSVs share the reader ------------------------------------------------


def test_session_csv_streams_counts_outside_rows_and_names_unclosed_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_csv, "CHUNK_ROWS", 2)
    path = _write(
        tmp_path / "visits.csv",
        codecs.BOM_UTF16_LE
        + _lines(
            "Day,Revenue",
            "2026-01-05,TRUE",  # 2
            "2026-01-04,FALSE",  # 3 outside
            "2026-01-05,maybe",  # 4 quarantined
            '2026-01-06,"no',  # 5 unclosed to the end
            "2026-01-06,FALSE",  # 6 swallowed
        ).encode("utf-16-le"),
    )
    source = SessionCsvSource(
        id="visits",
        path="*.csv",
        period=SessionPeriod(column="Day"),
        converted=FlagColumn(column="Revenue"),
    )

    extract = read_session_csvs(source, tmp_path, JAN5, JAN6)

    assert _rows(extract.sessions, ["date", "converted", "line"]) == [(JAN5, True, 2)]
    reason = (
        "an unclosed quote at line 5 swallowed lines 5..6 into one row "
        "(the quote was still open at the end of the file)"
    )
    assert _rows(extract.quarantine, ["line", "column_name", "reason"]) == [
        (4, "Revenue", "not a yes/no value: 'maybe'"),
        (5, None, reason),
    ]
    assert extract.rows_outside_days == 1
    assert extract.warnings == (f"{path}:5: {reason}; the row is quarantined",)


# --- Through the real pipeline ----------------------------------------------------------

TINY_PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {id: email_news, channel: email, match: [{source: newsletter, medium: email}]}
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.01, as_of: 2026-01-01}
        target: {value: 0.03, by: 2026-12-31}
        grains: [day]
"""


# Why: the run's metadata says how many rows the files held outside its days, and the run
# log tells about a quote that swallowed lines.
def test_a_run_reports_rows_outside_its_days_and_unclosed_quotes(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(TINY_PLAN, encoding="utf-8")
    export = _write(
        tmp_path / "exports" / "2026-01.csv",
        _lines(
            HEADER,
            "2026-01-05,newsletter,email,jan,/,desktop,100,60,10",  # 2 outside
            "2026-01-06,newsletter,email,jan,/,desktop,90,50,9",  # 3
            '2026-01-06,google,organic,,"/broken,mobile,900,400,9',  # 4 swallows 5
            '2026-01-07,newsletter,email,jan,/",desktop,80,40,8',  # 5: a stray quote, 9 fields
            "2026-01-08,newsletter,email,jan,/,desktop,70,30,7",  # 6 outside
            "2026-01-09,newsletter,email,jan,/,desktop,n/a,30,7",  # 7 outside, bad
        ),
    )
    url = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    instance = dg.DagsterInstance.ephemeral()

    result = run_days(plan, JAN6, JAN7, warehouse_url=url, instance=instance)

    assert result.success, step_failures(result)
    metadata = [
        {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node("csv_exports")
        if m.asset_key == dg.AssetKey(["raw", "csv_traffic"])
    ]
    assert metadata
    assert {m["rows_outside_run_days"] for m in metadata} == {3}
    assert {m["quarantined_rows"] for m in metadata} == {1}
    reason = (
        "an unclosed quote at line 4 swallowed lines 4..5 into one row "
        "(one field holds 8 separators, a whole row's worth)"
    )
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]
    assert f"source 'export': {export}:4: {reason}; the row is quarantined" in warnings
    quarantine = read_frame_once(
        url, "select line, reason from raw.quarantine order by line", plan_id="plan"
    )
    assert list(quarantine.itertuples(index=False, name=None)) == [(4, reason)]
    traffic = read_frame_once(
        url, "select date, sessions from raw.csv_traffic order by date", plan_id="plan"
    )
    assert list(traffic.itertuples(index=False, name=None)) == [(JAN6, 90)]
