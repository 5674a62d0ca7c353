"""GA4-style daily CSV exports: files -> typed traffic and event-count frames + quarantine.

Files are streamed and typed in chunks of `CHUNK_ROWS` rows, so memory follows the rows
kept (typed, of the run's days), not the file. Parsing is vectorised over the columns of
a chunk; the only per-row Python is the `csv` reader and the row checks around it, which
is what gives every row its true line number for the quarantine.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from kpi_pipeline.lib.checks import (
    DATES_IN_HISTORY,
    ENGAGED_LE_SESSIONS,
    KEY_EVENTS_PLAUSIBLE,
    counts_non_negative,
)
from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.plan.csv_config import DATE_FORMATS, CsvSource
from kpi_pipeline.sources.quarantine import (
    QUARANTINE,
    RowProblems,
    compact_quarantine,
    quarantine_frame,
)
from kpi_pipeline.sources.text_files import (
    CHUNK_CHARS,
    CHUNK_ROWS,
    CsvFormatError,
    FileWarnings,
    FrameParts,
    ScannedFile,
    bounded_lines,
    categorical,
    concat_frames,
    constant,
    date_span,
    detect_delimiter,
    in_file_order,
    keep_in_range,
    listed,
    located_rows,
    matching_files,
    normal_header,
    open_text,
    outside_days,
    rejection,
    scan_file,
    swallowed_lines,
    text_frame,
    wider_span,
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
    checks=(
        counts_non_negative("sessions", "engaged_sessions", "key_events"),
        ENGAGED_LE_SESSIONS,
        KEY_EVENTS_PLAUSIBLE,
        DATES_IN_HISTORY,
    ),
)

CSV_EVENTS = TableSpec(
    schema="raw",
    name="csv_events",
    columns=(*_ROW_KEY, ("event_name", "text"), ("event_count", "double"), *_LINEAGE),
    grain="one row per traffic row and event name with a non-zero count",
    keys=("source_id", "date", *DIMENSIONS, "event_name"),
    indexes=(("source_id", "date"),),
    checks=(counts_non_negative("event_count"), DATES_IN_HISTORY),
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
    # Dated rows (valid or quarantined) outside [first_day, last_day]: read, then left out.
    rows_outside_days: int = 0
    # Located problems the run should tell about (e.g. a quote that swallowed lines).
    warnings: tuple[str, ...] = ()


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
    `collect_errors` is listed in `file_errors` while the others are read.

    Each file is streamed and typed `CHUNK_ROWS` rows at a time; only typed rows of the
    run's days (and quarantined rows, their text cut to `RAW_TEXT_LIMIT`) are kept."""
    files = matching_files(base_dir, source.path) if files is None else list(files)
    quarantine_columns = [c for c in QUARANTINE.column_names if c != "source_id"]
    traffic_parts = FrameParts(CSV_TRAFFIC.column_names)
    event_parts = FrameParts(CSV_EVENTS.column_names)
    bad_parts = FrameParts(quarantine_columns)
    formats: list[FileFormat] = []
    seen: dict[str, str] = {}
    scanned: dict[str, ScannedFile] = {}
    skipped: list[str] = []
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = {}
    file_errors: dict[str, str] = {}
    warnings: list[str] = []
    outside = 0
    for path in files:
        shown = str(path.resolve())
        scan = scan_file(path, source.encoding, shown)
        assert scan.sha256 is not None
        if scan.sha256 in seen:
            # A re-delivered export: counting it again would double every number.
            skipped.append(shown)
            continue
        seen[scan.sha256] = shown
        try:
            if scan.error:
                raise CsvFormatError(scan.error)
            read = _read_file(
                path,
                shown,
                scan,
                source,
                first_day,
                last_day,
                traffic_parts,
                event_parts,
                bad_parts,
            )
        except CsvFormatError as exc:
            if not collect_errors:
                raise
            file_errors[shown] = str(exc)
            continue
        scanned[shown] = scan
        file_days[shown] = read.span
        formats.append(read.file_format)
        outside += read.outside
        warnings.extend(read.warnings)
    traffic = traffic_parts.join()
    events = event_parts.join()
    traffic, events, duplicates = _quarantine_duplicates(traffic, events)
    if not duplicates.empty:
        bad_parts.add(compact_quarantine(_with_raw_text(duplicates, scanned, source)))
    # Every part is already cut to the run's days (rows without a date kept).
    quarantine = bad_parts.join()
    if quarantine.empty:
        quarantine = keep_in_range(quarantine, first_day, last_day)
    quarantine = in_file_order(quarantine)
    quarantine["source_id"] = constant(source.id, len(quarantine))
    quarantine = quarantine[QUARANTINE.column_names]
    loaded_days = {d.date() for d in pd.to_datetime(traffic["date"].unique())}
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
        rows_outside_days=outside,
        warnings=tuple(warnings),
    )


def _candidates(source: CsvSource) -> dict[str, tuple[str, ...]]:
    """Our field name -> header names to look for (events as `event:<name>`)."""
    events = {
        f"event:{name}": (headers,) if isinstance(headers, str) else tuple(headers)
        for name, headers in source.event_columns.items()
    }
    return {**source.columns.candidates(), **events}


@dataclass
class _Layout:
    """Where a file's rows start and which field is in which column."""

    header_line: int
    delimiter: str
    header: list[str]
    positions: dict[str, int]  # our field -> column index
    headers: dict[str, str]  # our field -> header found in the file
    rows: Iterator[tuple[int, int, list[str], bool]]  # see `located_rows`


def _layout(stream: TextIO, shown: str, source: CsvSource) -> _Layout | int:
    """The header and the rows after it; a file without one gives the header line it lacks."""
    # GA4 UI exports open with "# ..." comment lines (account, dates) and blank lines.
    skipped = 0
    header_text = None
    lines = bounded_lines(stream, shown)
    for text in lines:
        if text.strip() and not text.startswith("#"):
            header_text = text
            break
        skipped += 1
    if header_text is None:
        return skipped + 1
    header_line = skipped + 1
    delimiter = detect_delimiter(header_text) if source.delimiter == "auto" else source.delimiter
    reader = csv.reader(itertools.chain([header_text], lines), delimiter=delimiter)
    rows = located_rows(reader, shown, skipped)
    _, _, fields, _ = next(rows)
    header = [h.strip() for h in fields]
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
            f"{source.id!r}: missing {'; '.join(missing)}. Found: {listed(header)}"
        )
    return _Layout(header_line, delimiter, header, positions, headers, rows)


def _data_rows(layout: _Layout) -> Iterator[tuple[int, int, list[str], bool]]:
    """The rows holding data: blank rows, totals and a second "#" section left out."""
    for row in layout.rows:
        fields = row[2]
        if not fields or (not fields[0].strip() and all(not f.strip() for f in fields)):
            continue
        first = fields[0]
        if first.startswith("#"):
            return  # a second commented section (GA4 UI exports stack several tables)
        if not first[:1].isdigit() and normal_header(first) in _TOTAL_ROWS:
            continue
        yield row


@dataclass
class _FileRead:
    """One file, read in chunks (its rows added to the source's parts): what else it gave."""

    file_format: FileFormat
    span: tuple[dt.date | None, dt.date | None] = (None, None)
    outside: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)


def _read_file(
    path: Path,
    shown: str,
    scan: ScannedFile,
    source: CsvSource,
    first_day: dt.date,
    last_day: dt.date,
    traffic_parts: FrameParts,
    event_parts: FrameParts,
    bad_parts: FrameParts,
) -> _FileRead:
    """Stream one file: split it into rows (with their line numbers), type them a chunk at a
    time, and add the rows of the run's days and the quarantine to the parts. A file that
    fails part way adds nothing (its parts are added once the whole file has read)."""
    with open_text(path, scan) as stream:
        layout = _layout(stream, shown, source)
        if isinstance(layout, int):
            return _FileRead(FileFormat(shown, scan.encoding, ",", ".", "", "", layout, {}))
        decimal = source.decimal
        if decimal == "auto":
            # Where ";" separates fields, "," is the decimal mark (most of continental Europe).
            decimal = "," if layout.delimiter == ";" else "."
        file_format = FileFormat(
            file=shown,
            encoding=scan.encoding,
            delimiter=layout.delimiter,
            decimal=decimal,
            thousands=source.thousands,
            date_format=source.date_format,
            header_line=layout.header_line,
            headers=layout.headers,
        )
        result = _FileRead(file_format)
        file_traffic = FrameParts(traffic_parts.columns)
        file_events = FrameParts(event_parts.columns)
        file_bad = FrameParts(bad_parts.columns)
        date_format = None if source.date_format == "auto" else source.date_format
        warnings = FileWarnings(shown)
        expected = len(layout.header)
        pick = operator.itemgetter(*layout.positions.values())  # 9 fields at least: a tuple
        delimiter = layout.delimiter
        records: list[tuple[str, ...]] = []
        texts: list[str] = []
        lines: list[int] = []
        rejected: list[dict[str, object]] = []
        chars = 0

        def flush() -> None:
            nonlocal date_format, chars
            frame = text_frame(records, list(layout.positions), raw_text=texts)
            frame["file"] = constant(shown, len(frame))
            frame["line"] = np.asarray(lines, dtype="int64")
            records.clear()  # the frame holds them now: free the Python strings first
            texts.clear()
            chosen = date_format
            if chosen is None:
                # `auto`: the first chunk holding a readable date decides for the whole file.
                chosen, readable = _detect_date_format(frame["date"])
                if readable:
                    date_format = chosen
            chunk_format = dataclasses.replace(file_format, date_format=chosen)
            traffic, events, invalid, span, outside = _parse_rows(
                frame, source, chunk_format, first_day, last_day
            )
            file_traffic.add(traffic)
            file_events.add(events)
            invalid = keep_in_range(invalid, first_day, last_day)
            bad = concat_frames(
                [compact_quarantine(quarantine_frame(rejected)), compact_quarantine(invalid)],
                list(invalid.columns),
            )
            file_bad.add(in_file_order(bad))
            result.span = wider_span(result.span, span)
            result.outside += outside
            lines.clear()
            rejected.clear()
            chars = 0

        for start, end, fields, last in _data_rows(layout):
            raw_text = delimiter.join(fields)
            swallowed = (
                swallowed_lines(start, end, fields, delimiter, expected, last)
                if end > start
                else None
            )
            if swallowed:
                rejected.append(rejection(shown, start, None, swallowed, raw_text))
                warnings.add(start, f"{swallowed}; the row is quarantined")
            elif len(fields) != expected:
                reason = f"expected {expected} fields, found {len(fields)}"
                rejected.append(rejection(shown, start, None, reason, raw_text))
            else:
                records.append(pick(fields))
                texts.append(raw_text)
                lines.append(start)
            chars += len(raw_text)
            if len(records) + len(rejected) >= CHUNK_ROWS or chars >= CHUNK_CHARS:
                flush()
        if records or rejected:
            flush()
    traffic_parts.extend(file_traffic)
    event_parts.extend(file_events)
    bad_parts.extend(file_bad)
    result.file_format = dataclasses.replace(
        file_format, date_format=date_format or DATE_FORMATS[0]
    )
    result.warnings = warnings.all()
    return result


def _detect_date_format(values: pd.Series) -> tuple[str, int]:
    """The candidate format that reads the most values (ties: the first listed), and how
    many values it reads."""
    text = values.str.strip()
    scores = [
        int(pd.to_datetime(text, format=fmt, errors="coerce").notna().sum()) for fmt in DATE_FORMATS
    ]
    best = scores.index(max(scores))
    return DATE_FORMATS[best], scores[best]


def _parse_rows(
    rows: pd.DataFrame,
    source: CsvSource,
    file_format: FileFormat,
    first_day: dt.date,
    last_day: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, tuple[dt.date | None, dt.date | None], int]:
    """Type every column at once; a row failing any check goes to quarantine with the reason.
    Also returns the first and last day the rows are dated (all of them), and how many dated
    rows (valid or not) lie outside [first_day, last_day]."""
    problems = RowProblems(rows)
    headers = file_format.headers

    def flag(mask: pd.Series, field: str, message: str | Callable[[pd.Series], pd.Series]) -> None:
        problems.flag(mask, headers.get(field, field), message)

    def quoting(prefix: str, field: str, suffix: str = "") -> Callable[[pd.Series], pd.Series]:
        """Messages quoting the value of `field`, built for the flagged rows only."""
        return lambda flagged: prefix + rows.loc[flagged, field].map(repr) + suffix

    undecodable = rows["raw_text"].str.contains("\ufffd", regex=False)
    flag(undecodable, "raw_text", f"undecodable bytes for encoding {file_format.encoding}")

    date_format = file_format.date_format
    dates = pd.to_datetime(rows["date"].str.strip(), format=date_format, errors="coerce")
    flag(dates.isna(), "date", quoting("cannot read date ", "date", f" with format {date_format}"))

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
        flag(value.isna() | np.isinf(value), field, quoting("not a number: ", field))
        flag(value < 0, field, quoting("negative count: ", field))
        if field in ("sessions", "engaged_sessions"):
            flag(value % 1 != 0, field, quoting("not a whole number: ", field))
        numbers[field] = value
    flag(
        numbers["engaged_sessions"] > numbers["sessions"],
        "engaged_sessions",
        f"{headers.get('engaged_sessions')} exceeds {headers.get('sessions')}",
    )

    outside = outside_days(dates, first_day, last_day)
    valid = problems.clean & ~outside
    quarantine = problems.quarantine(dates)

    kept = rows.loc[valid]
    traffic = pd.DataFrame(
        {
            "source_id": constant(source.id, len(kept)),
            "date": dates[valid].astype("datetime64[s]"),
            **{d: categorical(_dimension(kept[d])) for d in DIMENSIONS},
            "sessions": numbers["sessions"][valid].astype("int64"),
            "engaged_sessions": numbers["engaged_sessions"][valid].astype("int64"),
            "key_events": numbers["key_events"][valid].astype("float64"),
            "file": kept["file"],
            "line": kept["line"].astype("int64"),
        }
    )[CSV_TRAFFIC.column_names]

    event_parts = []
    for field in measures:
        if not field.startswith("event:"):
            continue
        count = numbers[field][valid].astype("float64")
        part = traffic.loc[count > 0].drop(columns=["sessions", "engaged_sessions", "key_events"])
        part["event_name"] = constant(field.removeprefix("event:"), len(part))
        part["event_count"] = count[count > 0]
        event_parts.append(part[CSV_EVENTS.column_names])
    events = concat_frames(event_parts, CSV_EVENTS.column_names)
    return traffic, events, quarantine, date_span(dates), int(outside.sum())


def _quarantine_duplicates(
    traffic: pd.DataFrame, events: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keep the first row of each key (files in name order); later ones go to quarantine
    (their raw_text is read again from their files by `_with_raw_text`)."""
    if traffic.empty:
        return traffic, events, pd.DataFrame()
    keys = ["date", *DIMENSIONS]
    key = _row_keys(traffic, keys)
    if key is None:
        key = traffic.groupby(keys, observed=True, sort=False).ngroup().to_numpy()
    duplicated = pd.Series(key, copy=False).duplicated(keep="first").to_numpy()
    if not duplicated.any():
        return traffic, events, pd.DataFrame()
    firsts = np.flatnonzero(~duplicated)
    later = np.flatnonzero(duplicated)
    origin = traffic.iloc[firsts[pd.Index(key[firsts]).get_indexer(key[later])]]
    del key, firsts
    reasons = (
        "duplicate of the row at "
        + origin["file"].astype("str").to_numpy()
        + ":"
        + origin["line"].astype("str").to_numpy()
    )
    dropped = traffic.iloc[later]
    quarantine = pd.DataFrame(
        {
            "partition_date": dropped["date"].to_numpy(),
            "file": dropped["file"].astype("str").to_numpy(),
            "line": dropped["line"].to_numpy(),
            "column_name": None,
            "reason": reasons,
            "raw_text": "",
        }
    )
    gone = np.zeros(len(events), dtype=bool)
    for file, lines in quarantine.groupby("file")["line"]:
        gone |= (events["file"] == file).to_numpy() & events["line"].isin(lines).to_numpy()
    return (
        traffic.loc[~duplicated].reset_index(drop=True),
        events.loc[~gone].reset_index(drop=True),
        quarantine,
    )


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> np.ndarray | None:
    """One int64 per row, equal exactly when the rows' `columns` are equal, computed from the
    categories' codes and the days (far less memory than hashing the columns); None when the
    combinations do not fit in 62 bits."""
    key = np.zeros(len(frame), dtype="int64")
    room = 1
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.cat.codes.to_numpy().astype("int64") + 1  # -1 (missing) -> 0
            size = len(values.cat.categories) + 1
        elif values.dtype.kind == "M" and not values.isna().any():
            days = values.to_numpy().astype("datetime64[D]").astype("int64")
            low = int(days.min())
            codes, size = days - low, int(days.max()) - low + 1
        else:
            return None
        room *= size
        if room >= 1 << 62:
            return None
        key *= size
        key += codes
    return key


def _with_raw_text(
    duplicates: pd.DataFrame, scanned: dict[str, ScannedFile], source: CsvSource
) -> pd.DataFrame:
    """`duplicates` with the raw text of their rows, read again from their files (only the
    rows of the run's days are kept while reading, so this is the one way back to it)."""
    texts: dict[tuple[str, int], str] = {}
    for file, lines in duplicates.groupby("file")["line"]:
        wanted = set(lines.tolist())
        with open_text(Path(file), scanned[file]) as stream:
            layout = _layout(stream, file, source)
            assert not isinstance(layout, int)
            for start, _, fields, _ in _data_rows(layout):
                if start in wanted:
                    texts[(file, start)] = layout.delimiter.join(fields)
    keys = zip(duplicates["file"], duplicates["line"], strict=True)
    raw_text = [texts.get(key, "") for key in keys]
    return duplicates.assign(raw_text=raw_text)


def _dimension(text: pd.Series) -> pd.Series:
    cleaned = text.str.strip()
    return cleaned.mask(cleaned == "", NOT_SET)
