"""Reading text exports the way people deliver them: shared by the CSV-shaped sources.

Files are streamed, never held whole: `scan_file` reads the bytes once in blocks (content
hash, byte-order mark, and for `auto` whether the whole file is valid UTF-8), `open_text`
then decodes them incrementally for the `csv` module, and readers type their rows in
bounded chunks.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import glob
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals


class CsvFormatError(ValueError):
    """A file that cannot be read as the plan declares it: nothing is loaded."""


# Rows typed at once, and the characters of raw text a chunk may hold before it is typed.
CHUNK_ROWS = 50_000
CHUNK_CHARS = 16_000_000
# A longer line is not CSV (a file without line breaks): it fails the file, unread.
MAX_LINE_CHARS = 1_000_000

_BLOCK = 1 << 20  # bytes read at a time
_SAMPLE = 1 << 16  # bytes looked at for a byte-order mark and NUL bytes

# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


@dataclass(frozen=True)
class ScannedFile:
    """What one pass over a file's bytes found."""

    sha256: str | None
    encoding: str  # as reported (e.g. "utf-8-sig" for UTF-8 with a BOM)
    codec: str  # the codec that decodes the bytes after the mark
    bom_bytes: int
    error: str | None = None  # a file that cannot be decoded as declared (e.g. UTF-16, no BOM)


def scan_file(path: Path, declared: str, shown: str, digest: bool = True) -> ScannedFile:
    """The file's hash (with `digest`) and the encoding to read it with.

    A byte-order mark (UTF-8, UTF-16, UTF-32) decides the encoding whatever `declared` says;
    `auto` is UTF-8 when every byte of the file decodes as UTF-8, else Windows-1252. A file
    full of NUL bytes and no mark is UTF-16 or UTF-32 that a byte encoding would misread:
    `error` says so (the caller raises it once it knows the file is not a duplicate)."""
    hasher = hashlib.sha256() if digest else None
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE)
        found = [(name, len(mark)) for mark, name in _BOMS if head.startswith(mark)]
        encoding, bom = found[0] if found else (None, 0)
        # `auto` must know the whole file is UTF-8 before reading a row as UTF-8.
        validating = encoding is None and declared == "auto"
        utf8 = codecs.getincrementaldecoder("utf-8")() if validating else None
        valid = True
        block = head
        while block and (hasher is not None or (utf8 is not None and valid)):
            if hasher is not None:
                hasher.update(block)
            if utf8 is not None and valid:
                try:
                    utf8.decode(block)
                except UnicodeDecodeError:
                    valid = False
            block = handle.read(_BLOCK)
        if utf8 is not None and valid:
            try:
                utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                valid = False
    if validating:
        # Excel on Windows saves "CSV" in the ANSI code page; 5 bytes stay undefined.
        encoding = "utf-8" if valid else "cp1252"
    if encoding is None:
        encoding = declared
    codec = "utf-8" if encoding == "utf-8-sig" and bom else encoding
    error = None if bom else _nul_bytes_error(head, codec, declared, shown)
    return ScannedFile(hasher.hexdigest() if hasher else None, encoding, codec, bom, error)


def _nul_bytes_error(head: bytes, codec: str, declared: str, shown: str) -> str | None:
    """A message when `head` holds NUL bytes a byte encoding would misread: UTF-16/32 without
    a mark (NULs in a code unit's high bytes), or a file that is not text at all."""
    if codecs.lookup(codec).name.startswith(("utf-16", "utf-32")):
        return None
    nul = head.count(b"\x00")
    if not nul or nul * 10 < len(head):
        return None  # a stray NUL is a bad row (quarantined), not a bad file

    def share(offset: int, step: int) -> float:
        part = head[offset::step]
        return part.count(b"\x00") / len(part) if part else 0.0

    mostly, rarely = 0.5, 0.05
    likely = None
    if share(1, 4) >= mostly and share(2, 4) >= mostly:  # 4-byte code units
        likely = "utf-32-le" if share(0, 4) <= rarely else "utf-32-be"
    elif share(1, 2) >= mostly and share(0, 2) <= rarely:
        likely = "utf-16-le"
    elif share(0, 2) >= mostly and share(1, 2) <= rarely:
        likely = "utf-16-be"
    counted = f"{nul} of its first {len(head)} bytes are NUL"
    if likely is None:
        return (
            f"{shown}:1: the file is not text that `encoding: {declared}` can read ({counted}); "
            "is it a spreadsheet or another binary file saved under a .csv name? Export it as CSV"
        )
    return (
        f"{shown}:1: the file is probably {likely.upper()} without a byte-order mark "
        f"({counted}), which `encoding: {declared}` cannot read; declare its encoding for this "
        f"source in the plan: `encoding: {likely}` (or save the file as UTF-8)"
    )


def open_text(path: Path, scanned: ScannedFile) -> TextIO:
    """The file as text, decoded incrementally; undecodable bytes become U+FFFD so the row is
    quarantined instead of the file failing. Lines end at \\n, \\r\\n or \\r, kept for `csv`."""
    handle = path.open("rb")
    handle.seek(scanned.bom_bytes)
    return io.TextIOWrapper(handle, encoding=scanned.codec, errors="replace", newline="")


def bounded_lines(stream: TextIO, shown: str) -> Iterator[str]:
    """The stream's lines; one longer than `MAX_LINE_CHARS` fails the file (with its line)
    instead of being held whole."""
    for number, line in enumerate(iter(functools.partial(stream.readline, MAX_LINE_CHARS), ""), 1):
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise CsvFormatError(
                f"{shown}:{number}: line {number} is longer than {MAX_LINE_CHARS:,} characters, "
                "which no CSV export has: is this file made of lines?"
            )
        yield line


def matching_files(base_dir: Path, pattern: str) -> list[Path]:
    """Files matching a plan's glob, relative to the plan's folder, in name order."""
    # The plan's folder is a literal path: only the plan's own pattern may hold wildcards.
    root = Path(glob.escape(str(base_dir)))
    # normpath: "plan_config/../data" must match even where plan_config/ does not exist (an
    # installed example plan reads from the current folder, see LoadedPlan.base_dir).
    full = os.path.normpath(pattern if Path(pattern).is_absolute() else str(root / pattern))
    # glob.glob, unlike Path.glob, accepts "../" and absolute patterns as users write them.
    return sorted(Path(p) for p in glob.glob(full))  # noqa: PTH207


def concat_frames(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Frames one after the other; categorical columns stay categorical (sorted categories)."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    for column in columns:
        if len(frames) > 1 and all(
            isinstance(f[column].dtype, pd.CategoricalDtype) for f in frames
        ):
            categories = sorted(set().union(*(f[column].cat.categories for f in frames)))
            frames = [
                f.assign(**{column: f[column].cat.set_categories(categories)}) for f in frames
            ]
    return pd.concat(frames, ignore_index=True)[columns]


class FrameParts:
    """Frames of the same columns kept as separate column pieces, joined one column at a time
    so each column's pieces are freed once joined: the rows are held once, not twice."""

    def __init__(self, columns: list[str]):
        self.columns = columns
        self.pieces: dict[str, list[Any]] = {c: [] for c in columns}

    def add(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        for column in self.columns:
            # A copy of its own: a view would keep the chunk's whole block alive.
            self.pieces[column].append(frame[column].array.copy())

    def extend(self, other: FrameParts) -> None:
        """Take over `other`'s pieces (e.g. a file's, once the whole file has read)."""
        for column in self.columns:
            self.pieces[column].extend(other.pieces[column])
            other.pieces[column] = []

    def __bool__(self) -> bool:
        return bool(self.pieces[self.columns[0]])

    def join(self) -> pd.DataFrame:
        """The rows of every frame added, in order (categories unioned and sorted); the
        pieces are released."""
        if not self:
            return pd.DataFrame(columns=self.columns)
        data = {}
        for column in self.columns:
            pieces = self.pieces.pop(column)
            self.pieces[column] = []
            if all(isinstance(p, pd.Categorical) for p in pieces):
                joined = union_categoricals(pieces, sort_categories=True)
            elif len({(type(p), p.dtype) for p in pieces}) == 1:
                joined = type(pieces[0])._concat_same_type(pieces)
            else:  # mixed types: let pandas find the common one
                joined = pd.concat([pd.Series(p, copy=False) for p in pieces]).array
            del pieces
            if isinstance(joined, pd.arrays.NumpyExtensionArray):
                joined = joined.to_numpy()  # its own dtype: object stays object
            data[column] = pd.Series(joined, dtype=joined.dtype, copy=False)
        return pd.DataFrame(data, copy=False)


def text_frame(
    records: Sequence[Sequence[str]], columns: list[str], raw_text: list[str]
) -> pd.DataFrame:
    """Rows of strings (and each row's raw text) as a frame of string columns, Arrow-backed:
    compact, and cleaned by vectorised kernels rather than per-value Python."""
    values = zip(*records, strict=True) if records else ([] for _ in columns)
    frame = {c: pd.Series(v, dtype="str") for c, v in zip(columns, values, strict=True)}
    return pd.DataFrame({**frame, "raw_text": pd.Series(raw_text, dtype="str")})


def in_file_order(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantine rows ordered by file and line (sorted only when they are not already)."""
    if len(quarantine) < 2:
        return quarantine
    files = quarantine["file"]
    if isinstance(files.dtype, pd.CategoricalDtype):
        if not files.cat.categories.is_monotonic_increasing:
            files = files.cat.reorder_categories(sorted(files.cat.categories))
            quarantine = quarantine.assign(file=files)
        codes = files.cat.codes.to_numpy()
        lines = quarantine["line"].to_numpy()
        same = codes[1:] == codes[:-1]
        if (codes[1:] >= codes[:-1]).all() and (lines[1:][same] > lines[:-1][same]).all():
            return quarantine
    return quarantine.sort_values(["file", "line"], kind="stable").reset_index(drop=True)


def constant(value: object, rows: int) -> pd.Categorical:
    """One value repeated, stored once."""
    return pd.Categorical.from_codes(np.zeros(rows, dtype="int8"), categories=[value])


def categorical(values: pd.Series) -> pd.Series:
    """Repeated strings (dimensions, audiences) stored once each."""
    return values.astype("category")


def normal_header(header: str) -> str:
    return " ".join(header.replace("\ufeff", "").split()).casefold()


def listed(values: list[str], limit: int = 300) -> str:
    """Values for a message, comma-separated, cut at `limit` characters (a junk "header")."""
    text = ", ".join(values)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def detect_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def located_rows(
    reader: Iterator[list[str]], shown: str, offset: int
) -> Iterator[tuple[int, int, list[str], bool]]:
    """(first line, last line, fields, is the file's last row) of each row of a `csv` reader,
    lines counted in the file (`offset` lines precede the reader's first). A file the csv
    module cannot split at all fails with the lines of the row it was reading."""
    end = getattr(reader, "line_num", 0)
    previous: tuple[int, int, list[str]] | None = None
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num  # type: ignore[attr-defined]
            if previous is not None:
                yield (*previous, False)
            previous = (start + offset, end + offset, fields)
    except csv.Error as exc:
        first = end + 1 + offset
        last = max(getattr(reader, "line_num", 0) + offset, first)
        where = (
            f"the row starting at line {first} runs to line {last}: an unclosed quote at line "
            f"{first} probably swallowed the lines after it"
            if last > first
            else "look for an unclosed quote above this line"
        )
        raise CsvFormatError(
            f"{shown}:{first}: cannot split the file into rows ({exc}); {where}"
        ) from None
    if previous is not None:
        yield (*previous, True)


def swallowed_lines(
    start: int, end: int, fields: list[str], delimiter: str, expected: int, last: bool
) -> str | None:
    """The reason for a row of lines `start`..`end` that a never-closed quote made of several
    lines, else None. Such a row has a field holding line breaks and then the wrong field
    count, or that field still open at the end of the file, or (closed by a stray quote in
    the same column) that field holding a whole row's worth of separators."""
    broken = [i for i, f in enumerate(fields) if "\n" in f or "\r" in f]
    if end == start or not broken:
        return None
    if len(fields) != expected:
        culprit, detail = broken[0], f"{len(fields)} fields, expected {expected}"
    elif last and broken[-1] == len(fields) - 1:
        culprit, detail = broken[-1], "the quote was still open at the end of the file"
    else:
        separators = {i: fields[i].count(delimiter) for i in broken}
        culprit = next((i for i in broken if separators[i] >= expected - 1), None)
        if culprit is None:
            return None  # a value written on several lines, quoted as it should be
        detail = f"one field holds {separators[culprit]} separators, a whole row's worth"
    line = start + sum(_line_breaks(f) for f in fields[:culprit])
    return f"an unclosed quote at line {line} swallowed lines {line}..{end} into one row ({detail})"


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


class FileWarnings:
    """A file's warnings, a few in full and then a count (a broken file may hold thousands)."""

    SHOWN = 5

    def __init__(self, shown: str):
        self.shown = shown
        self.messages: list[str] = []
        self.more = 0

    def add(self, line: int, message: str) -> None:
        if len(self.messages) < self.SHOWN:
            self.messages.append(f"{self.shown}:{line}: {message}")
        else:
            self.more += 1

    def all(self) -> list[str]:
        more = [f"{self.shown}: {self.more} more such row(s)"] if self.more else []
        return [*self.messages, *more]


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


def outside_days(dates: pd.Series, first_day: dt.date, last_day: dt.date) -> pd.Series:
    """Rows dated, but not within [first_day, last_day]."""
    return dates.notna() & ~dates.between(pd.Timestamp(first_day), pd.Timestamp(last_day))


def date_span(dates: pd.Series) -> tuple[dt.date | None, dt.date | None]:
    """First and last day among parsed dates (NaT ignored); (None, None) when there are none."""
    known = dates.dropna()
    if known.empty:
        return None, None
    return known.min().date(), known.max().date()


def wider_span(
    a: tuple[dt.date | None, dt.date | None], b: tuple[dt.date | None, dt.date | None]
) -> tuple[dt.date | None, dt.date | None]:
    """The span covering both (None ignored)."""
    firsts = [d for d in (a[0], b[0]) if d is not None]
    lasts = [d for d in (a[1], b[1]) if d is not None]
    return (min(firsts) if firsts else None, max(lasts) if lasts else None)
