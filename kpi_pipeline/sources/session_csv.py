"""Session-level CSV files: one row per visit, turned into one raw row per visit with its day.

Counting happens in SQL (staging -> intermediate), like every other source; this module only
reads, dates and validates rows, quarantining the ones it cannot use.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.plan.session_csv_config import FlagColumn, SessionCsvSource
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


def read_session_csvs(
    source: SessionCsvSource,
    base_dir: Path,
    first_day: dt.date,
    last_day: dt.date,
    files: Sequence[Path] | None = None,
    collect_errors: bool = False,
) -> SessionExtract:
    """Sessions dated within [first_day, last_day], from `files` (default: every file of the
    source's glob); with `collect_errors` a file that cannot be read is listed, not raised."""
    files = matching_files(base_dir, source.path) if files is None else list(files)
    kept, bad = [], []
    file_days: dict[str, tuple[dt.date | None, dt.date | None]] = {}
    file_errors: dict[str, str] = {}
    for path in files:
        try:
            rows, rejected = _read_file(path, source)
        except CsvFormatError as exc:
            if not collect_errors:
                raise
            file_errors[str(path.resolve())] = str(exc)
            continue
        sessions, invalid, span = _parse_rows(rows, source, first_day, last_day)
        file_days[str(path.resolve())] = span
        kept.append(sessions)
        bad.extend([rejected, invalid])
    quarantine = keep_in_range(
        concat_frames(bad, [c for c in QUARANTINE.column_names if c != "source_id"]),
        first_day,
        last_day,
    )
    quarantine["source_id"] = source.id
    return SessionExtract(
        sessions=concat_frames(kept, SESSION_ROWS.column_names),
        quarantine=quarantine[QUARANTINE.column_names]
        .sort_values(["file", "line"], kind="stable")
        .reset_index(drop=True),
        files=tuple(str(p.resolve()) for p in files),
        file_days=file_days,
        file_errors=file_errors,
    )


def _read_file(path: Path, source: SessionCsvSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    shown = str(path.resolve())
    text, _ = decode_text(path.read_bytes(), source.encoding)
    first_line = text.split("\n", 1)[0]
    delimiter = detect_delimiter(first_line) if source.delimiter == "auto" else source.delimiter
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    found = {normal_header(h): i for i, h in enumerate(header)}
    wanted = {
        "period": source.period.column,
        "converted": source.converted.column,
        **({"engaged": source.engaged.column} if source.engaged else {}),
        **({"audience": source.audience} if source.audience else {}),
    }
    missing = [
        f"{field} ({name})" for field, name in wanted.items() if normal_header(name) not in found
    ]
    if missing:
        raise CsvFormatError(
            f"{shown}:1: the header does not match source {source.id!r}: missing "
            f"{', '.join(missing)}. Found: {', '.join(header)}"
        )
    positions = {field: found[normal_header(name)] for field, name in wanted.items()}
    records, lines, rejected = [], [], []
    previous_end = reader.line_num
    for fields in checked_rows(reader, shown, 0):
        start, previous_end = previous_end + 1, reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        raw_text = delimiter.join(fields)
        if len(fields) != len(header):
            reason = f"expected {len(header)} fields, found {len(fields)}"
            rejected.append(rejection(shown, start, None, reason, raw_text))
            continue
        records.append([fields[i].strip() for i in positions.values()] + [raw_text])
        lines.append(start)
    frame = pd.DataFrame(records, columns=[*positions, "raw_text"], dtype=object)
    frame["file"] = shown
    frame["line"] = np.asarray(lines, dtype="int64")
    return frame, quarantine_frame(rejected)


def _parse_rows(
    rows: pd.DataFrame, source: SessionCsvSource, first_day: dt.date, last_day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[dt.date | None, dt.date | None]]:
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
    flag(
        dates.isna(), period.column, "cannot read " + rows["period"].map(repr) + f" as {described}"
    )

    converted = _flags(rows["converted"], source.converted)
    flag(
        converted.isna(),
        source.converted.column,
        "not a yes/no value: " + rows["converted"].map(repr),
    )
    engaged = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    if source.engaged:
        engaged = _flags(rows["engaged"], source.engaged)
        flag(
            engaged.isna(),
            source.engaged.column,
            "not a yes/no value: " + rows["engaged"].map(repr),
        )

    in_range = dates.between(pd.Timestamp(first_day), pd.Timestamp(last_day))
    valid = problems.clean & in_range
    quarantine = problems.quarantine(dates)
    audience = (
        rows["audience"].mask(rows["audience"] == "", "(not set)")
        if source.audience
        else "(not set)"
    )
    sessions = pd.DataFrame(
        {
            "source_id": source.id,
            "date": dates[valid].astype("datetime64[s]"),
            "source": source.source.lower(),
            "medium": source.medium.lower(),
            "campaign": source.campaign.lower(),
            "audience": audience[valid] if source.audience else audience,
            "converted": converted[valid].astype(bool),
            "engaged": engaged[valid],
            "file": rows.loc[valid, "file"],
            "line": rows.loc[valid, "line"].astype("int64"),
        }
    )
    return sessions[SESSION_ROWS.column_names], quarantine, date_span(dates)


def _flags(values: pd.Series, spec: FlagColumn) -> pd.Series:
    """True / False from the declared spellings; anything else is missing (quarantined)."""
    folded = values.str.strip().str.casefold()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[folded.isin([v.casefold() for v in spec.true_values])] = True
    result[folded.isin([v.casefold() for v in spec.false_values])] = False
    return result
