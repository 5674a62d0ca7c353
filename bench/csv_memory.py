"""CSV memory benchmark: reading a ~200 MB export stays under 1 GiB peak RSS.

    .venv/bin/python bench/csv_memory.py                 # two ~200 MB files, every case
    .venv/bin/python bench/csv_memory.py --size-mb 20    # a quick look

In a temporary folder it writes two GA4-style exports with the demo's headers (those of
`kpi_pipeline.sources.demo_data`, read through the CSV source declared in
plan_config/demo.yaml, only its glob changed):

- valid: one row per day, tactic, landing page and device, 1% of them quarantined
  (sessions "n/a");
- junk: rows that mostly fail: sessions "n/a" (dated), impossible dates (undated), rows
  cut short, engaged sessions above sessions, one line in a hundred a 5,000-character run
  of junk; about one row in five is valid.

Then, each in a fresh process, it reads each file with `read_csv_exports` for a run range
covering all its days and for a single day, and, as the naive baseline, loads the whole
file with `pandas.read_csv` (default options). For each case it reports the wall time of
the read in the child and the child's peak RSS (`ru_maxrss` from `os.wait4`, which
includes the interpreter and its imports: see the "imports only" row), with the rows kept.

It exits non-zero when a child fails or one of our cases (not the baseline) exceeds the
limit (`--limit-mib`, default 1024).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_PLAN = ROOT / "plan_config" / "demo.yaml"
FIRST_DAY = dt.date(2025, 1, 1)
ROWS_PER_DAY = 7_000

TACTICS = (
    ("google", "organic", "(not set)"),
    ("(direct)", "(none)", "(not set)"),
    ("newsletter", "email", "nl_2025_spring"),
    ("klaviyo", "email", "cart_abandon_flow"),
    ("google", "cpc", "brand_northwind"),
    ("google", "cpc", "generic_hiking_boots"),
    ("bing", "cpc", "generic_backpacks"),
    ("instagram", "social", "spring_tents"),
    ("youtube", "video", "howto_tent_setup"),
    ("facebook", "referral", "(not set)"),
)
DEVICES = ("desktop", "mobile", "tablet")


# -- the files ----------------------------------------------------------------------------


def _header() -> str:
    from kpi_pipeline.sources.demo_data import COLUMNS

    return ",".join(COLUMNS)


def _valid_row(day: str, i: int, rng: random.Random) -> str:
    source, medium, campaign = TACTICS[i % len(TACTICS)]
    device = DEVICES[(i // len(TACTICS)) % len(DEVICES)]
    page = f"/products/item-{i // (len(TACTICS) * len(DEVICES))}"
    sessions = rng.randrange(1, 500)
    engaged = rng.randrange(0, sessions + 1)
    key_events = rng.randrange(0, 10)
    starts = rng.randrange(0, 4) if i % 7 == 0 else 0
    submits = rng.randrange(0, starts + 1)
    return (
        f"{day},{source},{medium},{campaign},{page},{device},"
        f"{sessions},{engaged},{key_events},{starts},{submits}"
    )


def _junk_row(day: str, i: int, rng: random.Random) -> str:
    row = _valid_row(day, i, rng)
    kind = i % 10
    if i % 100 == 99:
        # Not starting with "#", which would end the export (a second commented section).
        return "x" + "".join(rng.choice("abcdefghij ;:#'") for _ in range(4_999))
    if kind in (0, 1, 2, 3):  # dated, not a number
        fields = row.split(",")
        fields[6] = "n/a"
        return ",".join(fields)
    if kind in (4, 5):  # undated: an impossible date
        return row.replace(day, day[:5] + "02-30", 1)
    if kind == 6:  # cut short
        return row.rsplit(",", 4)[0]
    if kind == 7:  # engaged sessions above sessions
        fields = row.split(",")
        fields[7] = str(int(fields[6]) + 1)
        return ",".join(fields)
    return row  # kinds 8 and 9: valid


def write_export(path: Path, size_mb: int, junk: bool) -> tuple[int, dt.date, dt.date]:
    """Write days of ROWS_PER_DAY rows until the file reaches `size_mb`; rows, first, last."""
    rng = random.Random(7 if junk else 11)
    make = _junk_row if junk else _valid_row
    target = size_mb * 1_000_000
    rows = 0
    day = FIRST_DAY
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(_header() + "\n")
        written = 0
        while written < target:
            text = day.isoformat()
            lines = []
            for i in range(ROWS_PER_DAY):
                line = make(text, i, rng)
                if not junk and i % 100 == 42:
                    fields = line.split(",")
                    fields[6] = "n/a"
                    line = ",".join(fields)
                lines.append(line)
            block = "\n".join(lines) + "\n"
            handle.write(block)
            written += len(block)
            rows += len(lines)
            day += dt.timedelta(days=1)
    return rows, FIRST_DAY, day - dt.timedelta(days=1)


# -- one case, in its own process --------------------------------------------------------


def worker(case: dict) -> dict:
    started = time.perf_counter()
    if case["kind"] == "imports":
        import pandas  # noqa: F401

        from kpi_pipeline.sources.csv_export import read_csv_exports

        return {"seconds": time.perf_counter() - started}
    if case["kind"] == "pandas":
        import pandas as pd

        started = time.perf_counter()
        frame = pd.read_csv(case["file"])
        return {"seconds": time.perf_counter() - started, "rows": len(frame)}
    import yaml

    from kpi_pipeline.plan.csv_config import CsvSource
    from kpi_pipeline.sources.csv_export import read_csv_exports

    declared = yaml.safe_load(DEMO_PLAN.read_text(encoding="utf-8"))["sources"]["csv_exports"][0]
    source = CsvSource(**{**declared, "path": Path(case["file"]).name})
    first, last = dt.date.fromisoformat(case["first"]), dt.date.fromisoformat(case["last"])
    started = time.perf_counter()
    extract = read_csv_exports(source, Path(case["file"]).parent, first, last)
    return {
        "seconds": time.perf_counter() - started,
        "traffic": len(extract.traffic),
        "events": len(extract.events),
        "quarantined": len(extract.quarantine),
        "outside": extract.rows_outside_days,
    }


def run_case(case: dict, log: Path) -> dict:
    """The case in a fresh interpreter; its own result plus its peak RSS from `wait4`."""
    with log.open("w") as errors:
        child = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(case)],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    result = {"peak_mib": usage.ru_maxrss / 1024, "exit": child.returncode}
    if child.returncode == 0:
        result |= json.loads(out.strip().splitlines()[-1])
    else:
        result["error"] = log.read_text()[-2000:]
    return result


# -- the table ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--limit-mib", type=float, default=1024)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    sys.path.insert(0, str(ROOT))
    failures = []
    lines = [
        "| case | file | run days | seconds | peak RSS (MiB) | traffic rows | event rows "
        "| quarantined | outside the run |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="csv_memory_") as tmp:
        folder = Path(tmp)
        files = {}
        for name, junk in (("valid", False), ("junk", True)):
            (folder / name).mkdir()
            path = folder / name / "export.csv"
            started = time.perf_counter()
            rows, first, last = write_export(path, args.size_mb, junk)
            files[name] = (path, first, last)
            print(
                f"wrote {name}: {path.stat().st_size / 1e6:.0f} MB, {rows:,} rows, "
                f"{first}..{last} in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        cases = [("imports only", "-", "-", {"kind": "imports"})]
        for name, (path, first, last) in files.items():
            middle = first + (last - first) / 2
            for days, (a, b) in (
                (f"all {(last - first).days + 1}", (first, last)),
                (f"one ({middle})", (middle, middle)),
            ):
                case = {"kind": "ours", "file": str(path), "first": str(a), "last": str(b)}
                cases.append(("read_csv_exports", name, days, case))
            cases.append(
                ("pandas.read_csv (baseline)", name, "-", {"kind": "pandas", "file": str(path)})
            )
        for label, name, days, case in cases:
            result = run_case(case, folder / "child.log")
            print(f"{label} {name} {days}: {result}", file=sys.stderr)
            if result["exit"] != 0:
                failures.append(f"{label} {name} {days} failed: {result['error']}")
            elif case["kind"] == "ours" and result["peak_mib"] > args.limit_mib:
                failures.append(
                    f"{label} {name} {days}: peak RSS {result['peak_mib']:.0f} MiB "
                    f"over {args.limit_mib:.0f} MiB"
                )
            size = (
                f"{Path(case['file']).stat().st_size / 1e6:.0f} MB {name}"
                if "file" in case
                else "-"
            )
            traffic = result.get("traffic", result.get("rows", ""))
            lines.append(
                f"| {label} | {size} | {days} | {result.get('seconds', float('nan')):.1f} "
                f"| {result['peak_mib']:.0f} | {traffic} | {result.get('events', '')} "
                f"| {result.get('quarantined', '')} | {result.get('outside', '')} |"
            )
    print("\n".join(lines))
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
