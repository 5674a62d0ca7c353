"""Reading text exports the way people deliver them: shared by the CSV-shaped sources."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import glob
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


class CsvFormatError(ValueError):
    """A file that cannot be read as the plan declares it: nothing is loaded."""


def matching_files(base_dir: Path, pattern: str) -> list[Path]:
    """Files matching a plan's glob, relative to the plan's folder, in name order."""
    # The plan's folder is a literal path: only the plan's own pattern may hold wildcards.
    root = Path(glob.escape(str(base_dir)))
    full = pattern if Path(pattern).is_absolute() else str(root / pattern)
    # glob.glob, unlike Path.glob, accepts "../" and absolute patterns as users write them.
    return sorted(Path(p) for p in glob.glob(full))  # noqa: PTH207


def concat_frames(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def normal_header(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


def decode_text(data: bytes, declared: str) -> tuple[str, str]:
    """Text and the encoding used. A BOM is skipped; `auto` tries UTF-8, then Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if declared == "auto":
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # Excel on Windows saves "CSV" in the ANSI code page; 5 bytes stay undefined.
            return data.decode("cp1252", errors="replace"), "cp1252"
    # Undecodable bytes become U+FFFD so the row is quarantined instead of the file failing.
    return data.decode(declared, errors="replace"), declared


def detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def checked_rows(reader: Iterator[list[str]], shown: str, offset: int) -> Iterator[list[str]]:
    """The reader's rows; a file the csv module cannot split at all fails with its line."""
    try:
        yield from reader
    except csv.Error as exc:
        line = getattr(reader, "line_num", 0) + offset
        raise CsvFormatError(
            f"{shown}:{line}: cannot split the file into rows ({exc}); "
            "look for an unclosed quote above this line"
        ) from None


def rejection(file: str, line: int, column: str | None, reason: str, raw: str) -> dict:
    return {
        "partition_date": None,
        "file": file,
        "line": line,
        "column_name": column,
        "reason": reason,
        "raw_text": raw,
    }


def keep_in_range(quarantine: pd.DataFrame, first_day: dt.date, last_day: dt.date) -> pd.DataFrame:
    """Bad rows dated in the run's range, and those whose date could not be read at all."""
    day = pd.to_datetime(quarantine["partition_date"], errors="coerce")
    undated = day.isna()
    in_range = day.between(pd.Timestamp(first_day), pd.Timestamp(last_day))
    kept = quarantine[undated | in_range].copy()
    kept["partition_date"] = pd.to_datetime(kept["partition_date"], errors="coerce").astype(
        "datetime64[s]"
    )
    return kept


def date_span(dates: pd.Series) -> tuple[dt.date | None, dt.date | None]:
    """First and last day among parsed dates (NaT ignored); (None, None) when there are none."""
    known = dates.dropna()
    if known.empty:
        return None, None
    return known.min().date(), known.max().date()
