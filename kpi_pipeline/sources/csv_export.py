"""GA4-style daily CSV exports: files -> typed traffic and event-count frames + quarantine.

Parsing is vectorised over columns; the only per-row Python is the `csv` reader itself,
which is what gives every row its true line number for the quarantine.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.plan.csv_config import DATE_FORMATS, CsvSource
from kpi_pipeline.sources.quarantine import QUARANTINE, RowProblems, quarantine_frame
from kpi_pipeline.sources.text_files import (
    CsvFormatError,
    checked_rows,
    concat_frames,
    date_span,
    decode_text,
    detect_delimiter,
    keep_in_range,
    matching_files,
    normal_header,
    rejection,
)

__all__ = ["CSV_EVENTS", "CSV_TRAFFIC", "CsvExtract", "CsvFormatError", "read_csv_exports"]

DIMENSIONS = ("source", "medium", "campaign", "landing_page", "device")
NOT_SET = "(not set)"

# Every raw row carries its key and where it came from (file and line), for tracing back.
_ROW_KEY: tuple[tuple[str, ColumnType], ...] = (
    ("source_id", "text"),
    ("date", "date"),
    *((dimension, "text") for dimension in DIMENSIONS),
)
_LINEAGE: tuple[tuple[str, ColumnType], ...] = (("file", "text"), ("line", "bigint"))

CSV_TRAFFIC = TableSpec(
    schema="raw",
    name="csv_traffic",
    columns=(
        *_ROW_KEY,
        ("sessions", "bigint"),
        ("engaged_sessions", "bigint"),
        ("key_events", "double"),
        *_LINEAGE,
    ),
    grain="one row per source, date, source/medium/campaign, landing page and device",
    keys=("source_id", "date", *DIMENSIONS),
    indexes=(("source_id", "date"),),
)

CSV_EVENTS = TableSpec(
    schema="raw",
    name="csv_events",
    columns=(*_ROW_KEY, ("event_name", "text"), ("event_count", "double"), *_LINEAGE),
    grain="one row per traffic row and event name with a non-zero count",
    keys=("source_id", "date", *DIMENSIONS, "event_name"),
    indexes=(("source_id", "date"),),
)


@dataclass(frozen=True)
class FileFormat:
    """How one file was read: declared by the plan or detected from the file itself."""

    file: str
    encoding: str
    delimiter: str
    decimal: str
    thousands: str
    date_format: str
    header_line: int
    headers: dict[str, str]  # our field -> header found in the file


@dataclass(frozen=True)
class CsvExtract:
    traffic: pd.DataFrame
    events: pd.DataFrame
    quarantine: pd.DataFrame
    files: tuple[str, ...]
    days_without_rows: tuple[dt.date, ...]
    formats: tuple[FileFormat, ...] = ()
    skipped_duplicate_files: tuple[str, ...] = ()  # same bytes as a file read before
    # Each file read: (first day, last day) of its dated rows (None when none), all days.
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = dataclasses.field(
        default_factory=dict
    )
    # Files that could not be read at all (with `collect_errors`): path -> message.
    file_errors: dict[str, str] = dataclasses.field(default_factory=dict)


# Rows an analytics UI appends to its exports: totals, not data.
_TOTAL_ROWS = frozenset({"total", "grand total", "totals", "totaux", "total général"})


def read_csv_exports(
    source: CsvSource,
    base_dir: Path,
    first_day: dt.date,
    last_day: dt.date,
    files: Sequence[Path] | None = None,
    collect_errors: bool = False,
) -> CsvExtract:
    """Rows dated within [first_day, last_day] from `files` (default: every file matching
    the source's glob). A file that cannot be read raises `CsvFormatError`, or with
    `collect_errors` is listed in `file_errors` while the others are read."""
    files = matching_files(base_dir, source.path) if files is None else list(files)
    traffic_parts, event_parts, bad_parts = [], [], []
    formats: list[FileFormat] = []
    seen: dict[str, str] = {}
    skipped: list[str] = []
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = {}
    file_errors: dict[str, str] = {}
    for path in files:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        shown = str(path.resolve())
        if digest in seen:
            # A re-delivered export: counting it again would double every number.
            skipped.append(shown)
            continue
        seen[digest] = shown
        try:
            rows, rejected, file_format = _read_file(data, shown, source)
        except CsvFormatError as exc:
            if not collect_errors:
                raise
            file_errors[shown] = str(exc)
            continue
        traffic, events, invalid, span = _parse_rows(rows, source, file_format, first_day, last_day)
        file_days[shown] = span
        traffic_parts.append(traffic)
        event_parts.append(events)
        bad_parts.extend([rejected, invalid])
        formats.append(file_format)
    # raw_text rides along until duplicates are found, so their quarantine rows keep it.
    traffic = concat_frames(traffic_parts, [*CSV_TRAFFIC.column_names, "raw_text"])
    events = concat_frames(event_parts, CSV_EVENTS.column_names)
    traffic, events, duplicates = _quarantine_duplicates(traffic, events)
    traffic = traffic.drop(columns="raw_text")
    quarantine = concat_frames(
        [*bad_parts, duplicates], [c for c in QUARANTINE.column_names if c != "source_id"]
    )
    quarantine = keep_in_range(quarantine, first_day, last_day)
    quarantine["source_id"] = source.id
    quarantine = quarantine[QUARANTINE.column_names].sort_values(["file", "line"], kind="stable")
    loaded_days = set(traffic["date"].dt.date) if not traffic.empty else set()
    all_days = pd.date_range(first_day, last_day, freq="D").date
    return CsvExtract(
        traffic=traffic.reset_index(drop=True),
        events=events.reset_index(drop=True),
        quarantine=quarantine.reset_index(drop=True),
        files=tuple(str(p.resolve()) for p in files),
        days_without_rows=tuple(d for d in all_days if d not in loaded_days),
        formats=tuple(formats),
        skipped_duplicate_files=tuple(skipped),
        file_days=file_days,
        file_errors=file_errors,
    )


def _candidates(source: CsvSource) -> dict[str, tuple[str, ...]]:
    """Our field name -> header names to look for (events as `event:<name>`)."""
    events = {
        f"event:{name}": (headers,) if isinstance(headers, str) else tuple(headers)
        for name, headers in source.event_columns.items()
    }
    return {**source.columns.candidates(), **events}


def _read_file(
    data: bytes, shown: str, source: CsvSource
) -> tuple[pd.DataFrame, pd.DataFrame, FileFormat]:
    """Split a file into well-formed rows (as text, with line numbers) and rejected rows."""
    text, encoding = decode_text(data, source.encoding)
    lines = text.splitlines(keepends=True)
    # GA4 UI exports open with "# ..." comment lines (account, dates) and blank lines.
    skipped = 0
    while skipped < len(lines) and (not lines[skipped].strip() or lines[skipped].startswith("#")):
        skipped += 1
    header_line = skipped + 1
    if skipped == len(lines):
        empty_format = FileFormat(shown, encoding, ",", ".", "", "", header_line, {})
        return _empty_rows(source), quarantine_frame([]), empty_format
    delimiter = detect_delimiter(lines[skipped]) if source.delimiter == "auto" else source.delimiter
    reader = csv.reader(io.StringIO("".join(lines[skipped:])), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    found = {normal_header(h): i for i, h in enumerate(header)}
    positions, headers, missing = {}, {}, []
    for field, names in _candidates(source).items():
        match = next((n for n in names if normal_header(n) in found), None)
        if match is None:
            missing.append(f"{field.removeprefix('event:')} (one of: {', '.join(names)})")
            continue
        positions[field] = found[normal_header(match)]
        headers[field] = header[positions[field]]
    if missing:
        raise CsvFormatError(
            f"{shown}:{header_line}: the header does not match the mapping of source "
            f"{source.id!r}: missing {'; '.join(missing)}. Found: {', '.join(header)}"
        )
    records: list[list[str]] = []
    line_numbers: list[int] = []
    rejected: list[dict[str, object]] = []
    previous_end = reader.line_num
    for fields in checked_rows(reader, shown, skipped):
        start, previous_end = previous_end + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if fields[0].startswith("#"):
            break  # a second commented section (GA4 UI exports stack several tables)
        if normal_header(fields[0]) in _TOTAL_ROWS:
            continue
        raw_text = delimiter.join(fields)
        if len(fields) != len(header):
            rejected.append(
                rejection(
                    shown,
                    start + skipped,
                    None,
                    f"expected {len(header)} fields, found {len(fields)}",
                    raw_text,
                )
            )
            continue
        records.append([fields[i] for i in positions.values()] + [raw_text])
        line_numbers.append(start + skipped)
    frame = pd.DataFrame(records, columns=[*positions, "raw_text"], dtype=object)
    frame["file"] = shown
    frame["line"] = np.asarray(line_numbers, dtype="int64")
    decimal = source.decimal
    if decimal == "auto":
        # Where ";" separates fields, "," is the decimal mark (most of continental Europe).
        decimal = "," if delimiter == ";" else "."
    date_format = (
        _detect_date_format(frame["date"]) if source.date_format == "auto" else source.date_format
    )
    file_format = FileFormat(
        file=shown,
        encoding=encoding,
        delimiter=delimiter,
        decimal=decimal,
        thousands=source.thousands,
        date_format=date_format,
        header_line=header_line,
        headers=headers,
    )
    return frame, quarantine_frame(rejected), file_format


def _detect_date_format(values: pd.Series) -> str:
    """The candidate format that reads the most values (ties: the first listed)."""
    text = values.str.strip()
    scores = [
        int(pd.to_datetime(text, format=fmt, errors="coerce").notna().sum()) for fmt in DATE_FORMATS
    ]
    return DATE_FORMATS[scores.index(max(scores))]


def _empty_rows(source: CsvSource) -> pd.DataFrame:
    return pd.DataFrame(columns=[*_candidates(source), "file", "line", "raw_text"], dtype=object)


def _parse_rows(
    rows: pd.DataFrame,
    source: CsvSource,
    file_format: FileFormat,
    first_day: dt.date,
    last_day: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[dt.date | None, dt.date | None]]:
    """Type every column at once; a row failing any check goes to quarantine with the reason.
    Also returns the first and last day the file's rows are dated (all of them)."""
    problems = RowProblems(rows)
    headers = file_format.headers

    def flag(mask: pd.Series, field: str, message: pd.Series | str) -> None:
        problems.flag(mask, headers.get(field, field), message)

    undecodable = rows["raw_text"].str.contains("\ufffd", regex=False)
    flag(undecodable, "raw_text", f"undecodable bytes for encoding {file_format.encoding}")

    date_format = file_format.date_format
    dates = pd.to_datetime(rows["date"].str.strip(), format=date_format, errors="coerce")
    flag(
        dates.isna(),
        "date",
        "cannot read date " + rows["date"].map(repr) + f" with format {date_format}",
    )

    measures = [
        "sessions",
        "engaged_sessions",
        "key_events",
        *(c for c in rows if c.startswith("event:")),
    ]
    numbers: dict[str, pd.Series] = {}
    for field in measures:
        text = rows[field].str.strip().str.replace(" ", "", regex=False)
        text = text.str.replace("\u00a0", "", regex=False).str.replace("\u202f", "", regex=False)
        if file_format.thousands:
            text = text.str.replace(file_format.thousands, "", regex=False)
        if file_format.decimal == ",":
            text = text.str.replace(",", ".", regex=False)
        value = pd.to_numeric(text.mask(text == ""), errors="coerce")
        flag(value.isna() | np.isinf(value), field, "not a number: " + rows[field].map(repr))
        flag(value < 0, field, "negative count: " + rows[field].map(repr))
        if field in ("sessions", "engaged_sessions"):
            flag(value % 1 != 0, field, "not a whole number: " + rows[field].map(repr))
        numbers[field] = value
    flag(
        numbers["engaged_sessions"] > numbers["sessions"],
        "engaged_sessions",
        f"{headers.get('engaged_sessions')} exceeds {headers.get('sessions')}",
    )

    in_range = dates.between(pd.Timestamp(first_day), pd.Timestamp(last_day))
    valid = problems.clean & in_range
    quarantine = problems.quarantine(dates)

    keys = pd.DataFrame({"date": dates, **{d: _dimension(rows[d]) for d in DIMENSIONS}})
    traffic = keys[valid].assign(
        source_id=source.id,
        sessions=numbers["sessions"][valid].astype("int64"),
        engaged_sessions=numbers["engaged_sessions"][valid].astype("int64"),
        key_events=numbers["key_events"][valid].astype("float64"),
        file=rows.loc[valid, "file"],
        line=rows.loc[valid, "line"].astype("int64"),
        raw_text=rows.loc[valid, "raw_text"],
    )
    traffic["date"] = traffic["date"].astype("datetime64[s]")
    traffic = traffic[[*CSV_TRAFFIC.column_names, "raw_text"]]

    event_parts = [
        traffic.drop(columns=["sessions", "engaged_sessions", "key_events", "raw_text"]).assign(
            event_name=field.removeprefix("event:"),
            event_count=numbers[field][valid].astype("float64"),
        )
        for field in measures
        if field.startswith("event:")
    ]
    events = concat_frames(event_parts, CSV_EVENTS.column_names)
    events = events[events["event_count"] > 0]
    return traffic, events, quarantine, date_span(dates)


def _quarantine_duplicates(
    traffic: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keep the first row of each key (files in name order); later ones go to quarantine."""
    keys = ["date", *DIMENSIONS]
    duplicated = traffic.duplicated(subset=keys, keep="first")
    if not duplicated.any():
        return traffic, events, pd.DataFrame()
    first = traffic[~duplicated].set_index(keys)
    origin = first["file"] + ":" + first["line"].astype(str)
    later = traffic[duplicated]
    reasons = origin.reindex(pd.MultiIndex.from_frame(later[keys])).to_numpy()
    quarantine = pd.DataFrame(
        {
            "partition_date": later["date"].to_numpy(),
            "file": later["file"].to_numpy(),
            "line": later["line"].to_numpy(),
            "column_name": None,
            "reason": ["duplicate of the row at " + o for o in reasons],
            "raw_text": later["raw_text"].to_numpy(),
        }
    )
    dropped = later[["file", "line"]]
    events = events.merge(dropped, on=["file", "line"], how="left", indicator=True)
    events = events[events["_merge"] == "left_only"].drop(columns="_merge")
    return traffic[~duplicated], events, quarantine


def _dimension(text: pd.Series) -> pd.Series:
    cleaned = text.str.strip()
    return cleaned.mask(cleaned == "", NOT_SET)
