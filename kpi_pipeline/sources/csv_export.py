"""GA4-style daily CSV exports: files -> typed traffic and event-count frames + quarantine.

Parsing is vectorised over columns; the only per-row Python is the `csv` reader itself,
which is what gives every row its true line number for the quarantine.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kpi_pipeline.lib.tables import ColumnType, TableSpec
from kpi_pipeline.plan.models import CsvSource
from kpi_pipeline.sources.quarantine import QUARANTINE, quarantine_frame

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
)

CSV_EVENTS = TableSpec(
    schema="raw",
    name="csv_events",
    columns=(*_ROW_KEY, ("event_name", "text"), ("event_count", "double"), *_LINEAGE),
    grain="one row per traffic row and event name with a non-zero count",
    keys=("source_id", "date", *DIMENSIONS, "event_name"),
)


class CsvFormatError(ValueError):
    """A file whose header does not match the plan's column mapping: nothing is loaded."""


@dataclass(frozen=True)
class CsvExtract:
    traffic: pd.DataFrame
    events: pd.DataFrame
    quarantine: pd.DataFrame
    files: tuple[str, ...]
    days_without_rows: tuple[dt.date, ...]


def read_csv_exports(
    source: CsvSource, base_dir: Path, first_day: dt.date, last_day: dt.date
) -> CsvExtract:
    """Rows dated within [first_day, last_day] from every file matching the source's glob."""
    # The plan's folder is a literal path: only the plan's own pattern may hold wildcards.
    root = Path(glob.escape(str(base_dir)))
    pattern = source.path if Path(source.path).is_absolute() else str(root / source.path)
    # glob.glob, unlike Path.glob, accepts "../" and absolute patterns as users write them.
    files = sorted(Path(p) for p in glob.glob(pattern))  # noqa: PTH207
    frames, bad = [], []
    for path in files:
        good, rejected = _read_file(path, source)
        frames.append(good)
        bad.append(rejected)
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(source)
    rejected = pd.concat(bad, ignore_index=True) if bad else quarantine_frame([])
    traffic, events, invalid = _parse_rows(rows, source, first_day, last_day)
    quarantine = pd.concat([rejected, invalid], ignore_index=True)
    quarantine = _keep_in_range(quarantine, first_day, last_day)
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
    )


def _wanted_columns(source: CsvSource) -> dict[str, str]:
    """Our field name -> header in the file."""
    return {
        **source.columns.model_dump(),
        **{f"event:{e}": c for e, c in source.event_columns.items()},
    }


def _empty_rows(source: CsvSource) -> pd.DataFrame:
    return pd.DataFrame(
        columns=[*_wanted_columns(source), "file", "line", "raw_text"], dtype=object
    )


def _read_file(path: Path, source: CsvSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a file into well-formed rows (as text, with line numbers) and rejected rows."""
    wanted = _wanted_columns(source)
    shown = str(path.resolve())
    records: list[list[str]] = []
    lines: list[int] = []
    rejected: list[dict[str, object]] = []
    # Undecodable bytes become U+FFFD so the row is quarantined instead of the file failing.
    with path.open(encoding=source.encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=source.delimiter)
        header = next(reader, None)
        if header is None:
            return _empty_rows(source), quarantine_frame([])
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [h for h in wanted.values() if h not in header]
        if missing:
            raise CsvFormatError(
                f"{shown}:1: missing column(s) {', '.join(missing)} (source {source.id!r}); "
                f"the header has: {', '.join(header)}"
            )
        positions = [header.index(h) for h in wanted.values()]
        previous_end = reader.line_num
        for fields in _checked(reader, shown):
            start, previous_end = previous_end + 1, reader.line_num
            if not fields or fields == [""]:
                continue
            raw_text = source.delimiter.join(fields)
            if len(fields) != len(header):
                rejected.append(
                    _rejection(
                        shown,
                        start,
                        None,
                        f"expected {len(header)} fields, found {len(fields)}",
                        raw_text,
                    )
                )
                continue
            records.append([fields[i] for i in positions] + [raw_text])
            lines.append(start)
    frame = pd.DataFrame(records, columns=[*wanted, "raw_text"], dtype=object)
    frame["file"] = shown
    frame["line"] = np.asarray(lines, dtype="int64")
    return frame, quarantine_frame(rejected)


def _checked(reader: Iterator[list[str]], shown: str) -> Iterator[list[str]]:
    """The reader's rows; a file the csv module cannot split at all fails with its line."""
    try:
        yield from reader
    except csv.Error as exc:
        line = getattr(reader, "line_num", 0)
        raise CsvFormatError(
            f"{shown}:{line}: cannot split the file into rows ({exc}); "
            "look for an unclosed quote above this line"
        ) from None


def _rejection(file: str, line: int, column: str | None, reason: str, raw: str) -> dict:
    return {
        "partition_date": None,
        "file": file,
        "line": line,
        "column_name": column,
        "reason": reason,
        "raw_text": raw,
    }


def _parse_rows(
    rows: pd.DataFrame, source: CsvSource, first_day: dt.date, last_day: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Type every column at once; a row failing any check goes to quarantine with the reason."""
    reason = pd.Series(pd.NA, index=rows.index, dtype="object")
    column = pd.Series(pd.NA, index=rows.index, dtype="object")

    def flag(mask: pd.Series, field: str, message: pd.Series | str) -> None:
        # Keep the first problem found for a row: fixing it usually reveals the next.
        new = mask & reason.isna()
        text = message if isinstance(message, str) else message[new]
        reason.loc[new] = text
        column.loc[new] = source_header.get(field, field)

    source_header = _wanted_columns(source)
    undecodable = rows["raw_text"].str.contains("\ufffd", regex=False)
    flag(undecodable, "raw_text", f"undecodable bytes for encoding {source.encoding}")

    dates = pd.to_datetime(rows["date"].str.strip(), format=source.date_format, errors="coerce")
    flag(
        dates.isna(),
        "date",
        "cannot read date " + rows["date"].map(repr) + f" with format {source.date_format}",
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
        if source.thousands:
            text = text.str.replace(source.thousands, "", regex=False)
        if source.decimal == ",":
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
        f"{source.columns.engaged_sessions} exceeds {source.columns.sessions}",
    )

    partition = dates.dt.date
    in_range = dates.between(pd.Timestamp(first_day), pd.Timestamp(last_day))
    valid = reason.isna() & in_range
    keys = pd.DataFrame({"date": dates, **{d: _dimension(rows[d]) for d in DIMENSIONS}})
    duplicated = valid & keys[valid].duplicated(keep="first").reindex(rows.index, fill_value=False)
    if duplicated.any():
        first = keys[valid].drop_duplicates(keep="first")
        origin = rows.loc[first.index, "file"] + ":" + rows.loc[first.index, "line"].astype(str)
        lookup = dict(zip(map(tuple, first.to_numpy()), origin, strict=True))
        dup_origin = [lookup[tuple(k)] for k in keys[duplicated].to_numpy()]
        reason.loc[duplicated] = ["duplicate of the row at " + o for o in dup_origin]
        column.loc[duplicated] = None
        valid &= ~duplicated

    invalid_rows = reason.notna()
    quarantine = pd.DataFrame(
        {
            "partition_date": partition.where(dates.notna(), None)[invalid_rows],
            "file": rows.loc[invalid_rows, "file"],
            "line": rows.loc[invalid_rows, "line"],
            "column_name": column[invalid_rows],
            "reason": reason[invalid_rows],
            "raw_text": rows.loc[invalid_rows, "raw_text"],
        }
    )

    traffic = keys[valid].assign(
        source_id=source.id,
        sessions=numbers["sessions"][valid].astype("int64"),
        engaged_sessions=numbers["engaged_sessions"][valid].astype("int64"),
        key_events=numbers["key_events"][valid].astype("float64"),
        file=rows.loc[valid, "file"],
        line=rows.loc[valid, "line"].astype("int64"),
    )
    traffic["date"] = traffic["date"].astype("datetime64[s]")
    traffic = traffic[CSV_TRAFFIC.column_names]

    event_parts = [
        traffic.drop(columns=["sessions", "engaged_sessions", "key_events"]).assign(
            event_name=field.removeprefix("event:"),
            event_count=numbers[field][valid].astype("float64"),
        )
        for field in measures
        if field.startswith("event:")
    ]
    events = (
        pd.concat(event_parts, ignore_index=True)
        if event_parts
        else pd.DataFrame(columns=CSV_EVENTS.column_names)
    )
    events = events[events["event_count"] > 0][CSV_EVENTS.column_names]
    return traffic, events, quarantine


def _dimension(text: pd.Series) -> pd.Series:
    cleaned = text.str.strip()
    return cleaned.mask(cleaned == "", NOT_SET)


def _keep_in_range(quarantine: pd.DataFrame, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    """Bad rows dated in the run's range, and those whose date could not be read at all."""
    day = pd.to_datetime(quarantine["partition_date"], errors="coerce")
    undated = day.isna()
    in_range = day.between(pd.Timestamp(first_day), pd.Timestamp(last_day))
    kept = quarantine[undated | in_range].copy()
    kept["partition_date"] = pd.to_datetime(kept["partition_date"], errors="coerce").astype(
        "datetime64[s]"
    )
    return kept
