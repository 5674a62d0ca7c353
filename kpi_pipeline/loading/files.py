"""Loading file sources (CSV exports, session-level CSVs) into a plan's raw tables.

For each source: choose the files that cover the run's days (the manifest skips the rest
unopened), read them, and replace exactly the days that were read, all sources in one
transaction. A day that had rows and now reads none keeps its rows and the run fails
before anything is written (unless the run or the source allows missing days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.loading.context import RunDays
from kpi_pipeline.loading.coverage import SOURCE_DAYS, coverage_frame, rows_by_day
from kpi_pipeline.loading.errors import LoadError, MissingDay, MissingDaysError, describe_days
from kpi_pipeline.loading.manifest import (
    FILE_MANIFEST,
    FileChoice,
    choose_files,
    entries_of,
    manifest_rows,
)
from kpi_pipeline.metrics.periods import ONE_DAY
from kpi_pipeline.plan.csv_config import CsvSource
from kpi_pipeline.plan.session_csv_config import SessionCsvSource
from kpi_pipeline.sources.csv_export import CSV_EVENTS, CSV_TRAFFIC, read_csv_exports
from kpi_pipeline.sources.quarantine import QUARANTINE
from kpi_pipeline.sources.session_csv import SESSION_ROWS, read_session_csvs
from kpi_pipeline.sources.text_files import matching_files
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Days, QuarantineOf, ValuesIn


@dataclass
class FileSourceLoad:
    """What loading one file source did, for the run's metadata."""

    source_id: str
    glob: str
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows written
    quarantined: int = 0
    files_matched: int = 0
    files_read: int = 0
    bytes_read: int = 0
    files_skipped_unchanged: int = 0
    duplicate_files: list[str] = field(default_factory=list)
    file_errors: dict[str, str] = field(default_factory=dict)
    days_without_rows: list[dt.date] = field(default_factory=list)
    emptied_days: list[dt.date] = field(default_factory=list)  # accepted as empty
    formats: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Dated rows (valid or quarantined) read from the files but outside the run's days.
    rows_outside_days: int = 0


@dataclass
class _Read:
    source_id: str
    load: FileSourceLoad
    choice: FileChoice
    tables: dict[TableSpec, pd.DataFrame]  # data tables; the first is dated per row
    quarantine: pd.DataFrame
    file_days: dict[str, tuple[dt.date | None, dt.date | None]]
    file_errors: dict[str, str]


# A file source kind: its source model, reader, and the raw tables it fills (first: dated).
_READERS: dict[type, tuple[Callable[..., Any], tuple[TableSpec, ...]]] = {
    CsvSource: (read_csv_exports, (CSV_TRAFFIC, CSV_EVENTS)),
    SessionCsvSource: (read_session_csvs, (SESSION_ROWS,)),
}

FILE_TABLES = (CSV_TRAFFIC, CSV_EVENTS, SESSION_ROWS, QUARANTINE, FILE_MANIFEST, SOURCE_DAYS)


def load_file_sources(
    wh: Warehouse,
    sources: Sequence[CsvSource | SessionCsvSource],
    run: RunDays,
    now: dt.datetime | None = None,
) -> list[FileSourceLoad]:
    """Read and load every file source for the run's days, in one transaction."""
    now = now or dt.datetime.now(dt.UTC)
    for spec in FILE_TABLES:
        wh.ensure_table(spec)
    reads = [_read_source(wh, source, run) for source in sources]
    month_dated = {
        s.id for s in sources if isinstance(s, SessionCsvSource) and s.period.format == "month_name"
    }
    _refuse_unsafe(wh, reads, sources, run)
    with wh.transaction() as conn:
        for read in reads:
            days = Days(read.source_id, run.first, run.last)
            for spec, frame in read.tables.items():
                read.load.rows[spec.name] = wh.replace_rows(conn, spec, frame, days)
            read_paths = [str(p.resolve()) for p in read.choice.to_read]
            quarantine_days = Days(read.source_id, run.first, run.last, column="partition_date")
            wh.replace_rows(
                conn, QUARANTINE, read.quarantine, QuarantineOf(quarantine_days, read_paths)
            )
            manifest = manifest_rows(
                read.source_id, read.choice, read.file_days, read.file_errors, now
            )
            wh.replace_rows(
                conn, FILE_MANIFEST, manifest, ValuesIn(read.source_id, "path", read_paths)
            )
            covered = coverage_frame(
                read.source_id,
                _covered_days(read, run, month_dated=read.source_id in month_dated),
                rows_by_day(next(iter(read.tables.values()))),
                now,
            )
            wh.replace_rows(conn, SOURCE_DAYS, covered, days)
    return [read.load for read in reads]


def _covered_days(read: _Read, run: RunDays, month_dated: bool) -> list[dt.date]:
    """The run's days some file read for it spans (rows or not): what the source covered.
    A month-dated file (rows on the 1st) spans every day of its months."""
    covered: set[dt.date] = set()
    for first, last in read.file_days.values():
        if first is None or last is None:
            continue
        if month_dated:
            first = first.replace(day=1)
            last = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - ONE_DAY
        start, end = max(first, run.first), min(last, run.last)
        covered.update(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return sorted(covered)


def _read_source(wh: Warehouse, source: CsvSource | SessionCsvSource, run: RunDays) -> _Read:
    reader, tables = _READERS[type(source)]
    load = FileSourceLoad(source_id=source.id, glob=source.path)
    files = matching_files(run.base_dir, source.path)
    previous = entries_of(
        wh.read_frame(
            f"select * from {wh.relation(FILE_MANIFEST)} where source_id = :source_id",
            {"source_id": source.id},
        )
    )
    choice = choose_files(files, previous, run.first, run.last)
    extract = reader(
        source, run.base_dir, run.first, run.last, files=choice.to_read, collect_errors=True
    )
    frames = (
        {CSV_TRAFFIC: extract.traffic, CSV_EVENTS: extract.events}
        if isinstance(source, CsvSource)
        else {SESSION_ROWS: extract.sessions}
    )
    assert tuple(frames) == tables
    load.files_matched = len(files)
    load.files_read = len(choice.to_read) - len(extract.file_errors)
    load.bytes_read = choice.bytes_to_read
    load.files_skipped_unchanged = len(choice.unchanged_outside)
    load.duplicate_files = sorted(choice.duplicates)
    load.file_errors = dict(extract.file_errors)
    load.quarantined = len(extract.quarantine)
    load.formats = [asdict(f) for f in getattr(extract, "formats", ())]
    load.rows_outside_days = extract.rows_outside_days
    dated = frames[tables[0]]
    loaded = (
        {d.date() for d in pd.to_datetime(dated["date"].unique())} if not dated.empty else set()
    )
    load.days_without_rows = [
        d for d in Days(source.id, run.first, run.last).dates if d not in loaded
    ]
    for path, error in extract.file_errors.items():
        load.warnings.append(f"source {source.id!r}: cannot read {path}: {error}")
    load.warnings.extend(f"source {source.id!r}: {warning}" for warning in extract.warnings)
    return _Read(
        source.id,
        load,
        choice,
        frames,
        extract.quarantine,
        extract.file_days,
        extract.file_errors,
    )


def _refuse_unsafe(
    wh: Warehouse,
    reads: list[_Read],
    sources: Sequence[CsvSource | SessionCsvSource],
    run: RunDays,
) -> None:
    """Fail before writing when a bad file covers the run's days, or a day that had rows
    read as empty (unless missing days are allowed)."""
    allowed = {s.id: run.allow_missing or s.allow_missing_days for s in sources}
    bad_covering: list[str] = []
    missing: list[MissingDay] = []
    for read in reads:
        unknown_bad = []
        for path, error in read.file_errors.items():
            entry = read.choice.previous.get(path)
            if entry is not None and entry.covers(run.first, run.last):
                bad_covering.append(
                    f"{error.rstrip('.')}. The file held {entry.first_day}..{entry.last_day} "
                    "when it last read well, which this run covers"
                )
            else:
                unknown_bad.append(path)
        if unknown_bad and read.load.days_without_rows:
            bad_covering.append(
                f"{read.file_errors[unknown_bad[0]].rstrip('.')}. Source {read.source_id!r} has "
                f"no rows for {describe_days(read.load.days_without_rows)}, which this file "
                "may hold"
            )
        dated_spec = next(iter(read.tables))
        with wh.engine.connect() as conn:
            existing = wh.count_rows(
                conn, dated_spec, Days(read.source_id, run.first, run.last), by="date"
            )
        for day, count in sorted(existing.items()):
            day = pd.Timestamp(day).date()
            if day not in read.load.days_without_rows:
                continue
            if allowed[read.source_id]:
                read.load.emptied_days.append(day)
                continue
            covering = [
                p
                for p, (first, last) in read.file_days.items()
                if first is not None and last is not None and first <= day <= last
            ]
            if covering:
                why = f"{len(covering)} file(s) covering it hold no valid row for it"
            elif read.load.files_matched:
                why = f"none of the {read.load.files_matched} matching file(s) covers it"
            else:
                why = "no file matches the glob"
            missing.append(MissingDay(read.source_id, day, count, f"'{read.load.glob}'", why))
    if bad_covering:
        raise LoadError(
            "; ".join(bad_covering)
            + f". This run changed nothing: fix or remove the file, then re-run: {run.command()}"
        )
    if missing:
        raise MissingDaysError(missing, run.command(allow_missing=True))
