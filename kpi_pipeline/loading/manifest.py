"""The file manifest: which files of a source were read, what they held, and when.

It lets a run parse only the files that cover its days: an unchanged file (same size and
modification time as when it was read) whose days lie outside the run is not opened. A
changed or new file is read, and a file whose bytes equal another file of the same source
(re-delivered under a new name) is read once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec

FILE_MANIFEST = TableSpec(
    "raw",
    "file_manifest",
    (
        ("source_id", "text"),
        ("path", "text"),
        ("size_bytes", "bigint"),
        ("mtime_ns", "bigint"),
        ("sha256", "text"),
        ("first_day", "date"),
        ("last_day", "date"),
        ("read_at", "timestamp"),
        ("error", "text"),
    ),
    grain="one row per source and file path, as last read",
    keys=("source_id", "path"),
)


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str
    first_day: dt.date | None
    last_day: dt.date | None
    error: str | None

    def covers(self, first: dt.date, last: dt.date) -> bool:
        return (
            self.first_day is not None
            and self.last_day is not None
            and self.first_day <= last
            and self.last_day >= first
        )


@dataclass
class FileChoice:
    """Which matched files a run parses, and why the others are left unopened."""

    to_read: list[Path] = field(default_factory=list)
    unchanged_outside: list[str] = field(default_factory=list)  # not opened
    duplicates: dict[str, str] = field(default_factory=dict)  # path -> same bytes as path
    stats: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # size, mtime, sha
    previous: dict[str, ManifestEntry] = field(default_factory=dict)

    @property
    def bytes_to_read(self) -> int:
        return sum(self.stats[str(p.resolve())][0] for p in self.to_read)


def entries_of(frame: pd.DataFrame) -> dict[str, ManifestEntry]:
    """Manifest rows (one source) by path."""
    entries = {}
    for row in frame.itertuples(index=False):
        entries[row.path] = ManifestEntry(
            path=row.path,
            size_bytes=int(row.size_bytes),
            mtime_ns=int(row.mtime_ns),
            sha256=row.sha256,
            first_day=_day(row.first_day),
            last_day=_day(row.last_day),
            error=None if pd.isna(row.error) else str(row.error),
        )
    return entries


def choose_files(
    files: list[Path], previous: dict[str, ManifestEntry], first: dt.date, last: dt.date
) -> FileChoice:
    """Files to parse for days [first, last]: new, changed, or covering those days."""
    choice = FileChoice(previous=previous)
    owner_of_hash: dict[str, str] = {}
    for path in files:
        shown = str(path.resolve())
        stat = path.stat()
        entry = previous.get(shown)
        unchanged = (
            entry is not None
            and entry.error is None
            and entry.size_bytes == stat.st_size
            and entry.mtime_ns == stat.st_mtime_ns
        )
        digest = entry.sha256 if unchanged and entry is not None else _sha256(path)
        choice.stats[shown] = (stat.st_size, stat.st_mtime_ns, digest)
        if digest in owner_of_hash:
            # A re-delivered export: counting it again would double every number.
            choice.duplicates[shown] = owner_of_hash[digest]
            continue
        owner_of_hash[digest] = shown
        if unchanged and entry is not None and not entry.covers(first, last):
            choice.unchanged_outside.append(shown)
            continue
        choice.to_read.append(path)
    return choice


def manifest_rows(
    source_id: str,
    choice: FileChoice,
    file_days: dict[str, tuple[dt.date | None, dt.date | None]],
    file_errors: dict[str, str],
    read_at: dt.datetime,
) -> pd.DataFrame:
    """New manifest rows for the files this run read (good or bad)."""
    rows = []
    for path in choice.to_read:
        shown = str(path.resolve())
        size, mtime, digest = choice.stats[shown]
        first, last = file_days.get(shown, (None, None))
        error = file_errors.get(shown)
        if error is not None and shown in choice.previous:
            # A file that went bad keeps the days it held when it last read well.
            first, last = choice.previous[shown].first_day, choice.previous[shown].last_day
        rows.append(
            {
                "source_id": source_id,
                "path": shown,
                "size_bytes": size,
                "mtime_ns": mtime,
                "sha256": digest,
                "first_day": first,
                "last_day": last,
                "read_at": read_at,
                "error": error,
            }
        )
    frame = pd.DataFrame(rows, columns=FILE_MANIFEST.column_names)
    for column in ("first_day", "last_day"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[s]")
    return frame


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _day(value: object) -> dt.date | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date()
