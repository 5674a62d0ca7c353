"""Session-level CSV files: one row per visit, turned into one raw row per visit with its day.

Counting happens in SQL (staging -> intermediate), like every other source; this module only
reads, dates and validates rows, quarantining the ones it cannot use. Files are streamed and
typed in chunks of `CHUNK_ROWS` rows (see `text_files`).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpi_pipeline.lib.checks import DATES_IN_HISTORY
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.plan.session_csv_config import FlagColumn, SessionCsvSource
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

NOT_SET = "(not set)"

SESSION_ROWS = TableSpec(
    schema="raw",
    name="session_csv_rows",
    columns=(
        ("source_id", "text"),
        ("date", "date"),
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("audience", "text"),
        ("converted", "boolean"),
        ("engaged", "boolean"),
        ("file", "text"),
        ("line", "bigint"),
    ),
    grain="one row per session (file and line)",
    keys=("source_id", "file", "line"),
    indexes=(("source_id", "date"),),
    checks=(DATES_IN_HISTORY,),
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january", "janv", "janvier"),
            ("feb", "february", "févr", "fevr", "février"),
            ("mar", "march", "mars"),
            ("apr", "april", "avr", "avril"),
            ("may", "mai"),
            ("jun", "june", "juin"),
            ("jul", "july", "juil", "juillet"),
            ("aug", "august", "août", "aout"),
            ("sep", "sept", "september", "septembre"),
            ("oct", "october", "octobre"),
            ("nov", "november", "novembre"),
            ("dec", "december", "déc", "décembre"),
        ],
        start=1,
    )
    for name in names
}


@dataclass(frozen=True)
class SessionExtract:
    sessions: pd.DataFrame
    quarantine: pd.DataFrame
    files: tuple[str, ...]
    # Each file read: (first day, last day) its rows are dated (None when none).
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = field(default_factory=dict)
    file_errors: dict[str, str] = field(default_factory=dict)  # with `collect_errors`
    # Dated rows (valid or quarantined) outside [first_day, last_day]: read, then left out.
    rows_outside_days: int = 0
    warnings: tuple[str, ...] = ()  # located problems (e.g. a quote that swallowed lines)


def read_session_csvs(
    source: SessionCsvSource,
    base_dir: Path,
    first_day: dt.date,
    last_day: dt.date,
    files: Sequence[Path] | None = None,
    collect_errors: bool = False,
) -> SessionExtract:
    """Sessions dated within [first_day, last_day], from `files` (default: every file of the
    source's glob); with `collect_errors` a file that cannot be read is listed, not raised.
    Files are streamed and typed `CHUNK_ROWS` rows at a time."""
    files = matching_files(base_dir, source.path) if files is None else list(files)
    kept = FrameParts(SESSION_ROWS.column_names)
    bad = FrameParts([c for c in QUARANTINE.column_names if c != "source_id"])
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = {}
    file_errors: dict[str, str] = {}
    warnings: list[str] = []
    outside = 0
    for path in files:
        shown = str(path.resolve())
        try:
            read = _read_file(path, shown, source, first_day, last_day)
        except CsvFormatError as exc:
            if not collect_errors:
                raise
            file_errors[shown] = str(exc)
            continue
        file_days[shown] = read.span
        kept.extend(read.sessions)
        bad.extend(read.quarantine)
        outside += read.outside
        warnings.extend(read.warnings)
    sessions = kept.join()
    # Every part is already cut to the run's days (rows without a date kept).
    quarantine = bad.join()
    if quarantine.empty:
        quarantine = keep_in_range(quarantine, first_day, last_day)
    quarantine = in_file_order(quarantine)
    quarantine["source_id"] = constant(source.id, len(quarantine))
    return SessionExtract(
        sessions=sessions,
        quarantine=quarantine[QUARANTINE.column_names].reset_index(drop=True),
        files=tuple(str(p.resolve()) for p in files),
        file_days=file_days,
        file_errors=file_errors,
        rows_outside_days=outside,
        warnings=tuple(warnings),
    )


@dataclass
class _FileRead:
    sessions: FrameParts = field(default_factory=lambda: FrameParts(SESSION_ROWS.column_names))
    quarantine: FrameParts = field(
        default_factory=lambda: FrameParts([c for c in QUARANTINE.column_names if c != "source_id"])
    )
    span: tuple[dt.date | None, dt.date | None] = (None, None)
    outside: int = 0
    warnings: list[str] = field(default_factory=list)


def _read_file(
    path: Path, shown: str, source: SessionCsvSource, first_day: dt.date, last_day: dt.date
) -> _FileRead:
    scan = scan_file(path, source.encoding, shown, digest=False)
    if scan.error:
        raise CsvFormatError(scan.error)
    result = _FileRead()
    with open_text(path, scan) as stream:
        lines = bounded_lines(stream, shown)
        first_line = next(lines, "")
        delimiter = detect_delimiter(first_line) if source.delimiter == "auto" else source.delimiter
        reader = csv.reader(itertools.chain([first_line], lines), delimiter=delimiter)
        rows = located_rows(reader, shown, 0)
        header = [h.strip() for h in next(rows, (0, 0, [], True))[2]]
        found = {normal_header(h): i for i, h in enumerate(header)}
        wanted = {
            "period": source.period.column,
            "converted": source.converted.column,
            **({"engaged": source.engaged.column} if source.engaged else {}),
            **({"audience": source.audience} if source.audience else {}),
        }
        missing = [
            f"{field} ({name})"
            for field, name in wanted.items()
            if normal_header(name) not in found
        ]
        if missing:
            raise CsvFormatError(
                f"{shown}:1: the header does not match source {source.id!r}: missing "
                f"{', '.join(missing)}. Found: {listed(header)}"
            )
        positions = [found[normal_header(name)] for name in wanted.values()]
        expected = len(header)
        warnings = FileWarnings(shown)
        records: list[list[str]] = []
        texts: list[str] = []
        lines: list[int] = []
        rejected: list[dict[str, object]] = []
        chars = 0

        def flush() -> None:
            nonlocal chars
            frame = text_frame(records, list(wanted), raw_text=texts)
            frame["file"] = constant(shown, len(frame))
            frame["line"] = np.asarray(lines, dtype="int64")
            records.clear()  # the frame holds them now: free the Python strings first
            texts.clear()
            sessions, invalid, span, outside = _parse_rows(frame, source, first_day, last_day)
            result.sessions.add(sessions)
            invalid = keep_in_range(invalid, first_day, last_day)
            bad = concat_frames(
                [compact_quarantine(quarantine_frame(rejected)), compact_quarantine(invalid)],
                list(invalid.columns),
            )
            result.quarantine.add(in_file_order(bad))
            result.span = wider_span(result.span, span)
            result.outside += outside
            lines.clear()
            rejected.clear()
            chars = 0

        for start, end, fields, last in rows:
            if not fields or (not fields[0].strip() and all(not f.strip() for f in fields)):
                continue
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
                records.append([fields[i].strip() for i in positions])
                texts.append(raw_text)
                lines.append(start)
            chars += len(raw_text)
            if len(records) + len(rejected) >= CHUNK_ROWS or chars >= CHUNK_CHARS:
                flush()
        if records or rejected:
            flush()
    result.warnings = warnings.all()
    return result


def _parse_rows(
    rows: pd.DataFrame, source: SessionCsvSource, first_day: dt.date, last_day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[dt.date | None, dt.date | None], int]:
    problems = RowProblems(rows)
    flag = problems.flag

    period = source.period
    if period.format == "month_name":
        month = rows["period"].str.strip().str.casefold().map(_MONTHS)
        dates = pd.to_datetime(
            pd.DataFrame({"year": period.year, "month": month, "day": 1}), errors="coerce"
        )
        described = f"a month name (year {period.year})"
    else:
        dates = pd.to_datetime(rows["period"], format=period.format, errors="coerce")
        described = f"format {period.format}"

    def quoting(prefix: str, field: str, suffix: str = "") -> Callable[[pd.Series], pd.Series]:
        """Messages quoting the value of `field`, built for the flagged rows only."""
        return lambda flagged: prefix + rows.loc[flagged, field].map(repr) + suffix

    flag(dates.isna(), period.column, quoting("cannot read ", "period", f" as {described}"))

    converted = _flags(rows["converted"], source.converted)
    flag(converted.isna(), source.converted.column, quoting("not a yes/no value: ", "converted"))
    engaged = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    if source.engaged:
        engaged = _flags(rows["engaged"], source.engaged)
        flag(engaged.isna(), source.engaged.column, quoting("not a yes/no value: ", "engaged"))

    outside = outside_days(dates, first_day, last_day)
    valid = problems.clean & ~outside
    quarantine = problems.quarantine(dates)
    count = int(valid.sum())
    audience = (
        categorical(rows.loc[valid, "audience"].mask(rows.loc[valid, "audience"] == "", NOT_SET))
        if source.audience
        else constant(NOT_SET, count)
    )
    sessions = pd.DataFrame(
        {
            "source_id": constant(source.id, count),
            "date": dates[valid].astype("datetime64[s]"),
            "source": constant(source.source.lower(), count),
            "medium": constant(source.medium.lower(), count),
            "campaign": constant(source.campaign.lower(), count),
            "audience": audience,
            "converted": converted[valid].astype(bool),
            "engaged": engaged[valid],
            "file": rows.loc[valid, "file"],
            "line": rows.loc[valid, "line"].astype("int64"),
        },
        index=rows.index[valid],
    )
    return sessions[SESSION_ROWS.column_names], quarantine, date_span(dates), int(outside.sum())


def _flags(values: pd.Series, spec: FlagColumn) -> pd.Series:
    """True / False from the declared spellings; anything else is missing (quarantined)."""
    folded = values.str.strip().str.casefold()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[folded.isin([v.casefold() for v in spec.true_values])] = True
    result[folded.isin([v.casefold() for v in spec.false_values])] = False
    return result
