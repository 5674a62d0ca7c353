"""One-day reads benchmark: a one-day run parses only that day's CSV export, not the year.

    .venv/bin/python bench/one_day_reads.py          # 2025-06-01..2026-11-25, day 2026-09-04
    .venv/bin/python bench/one_day_reads.py --day 2026-02-10 --repeats 5

In a temporary folder it copies the demo plan (plan_config/demo.yaml, whose CSV glob
`../data/demo/ga4_export_*.csv` is relative to the plan file) and writes the demo GA4
exports for `--first`..`--last` next to it with `write_demo_exports` (one file per month,
18 files for the default range), with a DuckDB warehouse file in the same folder. Then,
each run through `kpi_pipeline.runs.run_days` (the real daily Dagster job, every asset) in
a fresh process:

- fill: the whole range once, which records every file in the plan's file manifest
  (`<plan_id>_raw.file_manifest`);
- ours: `--day` alone, `--repeats` times, with the manifest as the fill left it;
- naive: `--day` alone, `--repeats` times, each after deleting every row of the manifest,
  so every export is parsed again (what a loader without a manifest does).

It reports, from the `raw/csv_traffic` asset materialization of each run: files matched,
files parsed, bytes parsed, files skipped unchanged; the total bytes of all exports; the
median run time and median `csv_exports` step time; and the naive/ours ratios. It exits
non-zero when a run fails or a one-day run with the manifest parses other than one file.

Not a test: figures go in the README. Timings are wall time of `run_days` in its process,
so they include Dagster start-up (building the definitions, the ephemeral instance, every
downstream SQL model and scoring step of the job), not only the CSV parse; the step column
isolates the CSV load step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSET_KEY = ["raw", "csv_traffic"]
CSV_STEP = "csv_exports"
FIGURES = ("files_matched", "files_parsed", "bytes_parsed", "files_skipped_unchanged")


# -- worker (each run in its own process) -----------------------------------------------


def worker(plan: str, url: str, first: dt.date, last: dt.date, empty_manifest: bool) -> dict:
    from kpi_pipeline.loading.manifest import FILE_MANIFEST
    from kpi_pipeline.plan.loader import load_plan
    from kpi_pipeline.runs import run_days, step_failures
    from kpi_pipeline.warehouse.engine import Warehouse

    emptied = None
    if empty_manifest:
        wh = Warehouse.from_url(url, load_plan(plan).plan_id)
        try:
            with wh.transaction() as conn:
                emptied = conn.exec_driver_sql(f"delete from {wh.relation(FILE_MANIFEST)}").rowcount
        finally:
            wh.dispose()  # DuckDB: release the file before the run opens it
    start = time.perf_counter()
    result = run_days(
        plan,
        first,
        last,
        warehouse_url=url,
        log_level="WARNING",  # as the CLI runs it
    )
    seconds = time.perf_counter() - start
    metadata: dict[str, object] = {}
    step_seconds = None
    for event in result.all_events:
        if (
            event.event_type_value == "ASSET_MATERIALIZATION"
            and event.asset_key is not None
            and list(event.asset_key.path) == ASSET_KEY
        ):
            found = event.event_specific_data.materialization.metadata
            metadata = {k: getattr(v, "value", v) for k, v in found.items() if k in FIGURES}
        if event.is_step_success and event.step_key == CSV_STEP:
            step_seconds = event.event_specific_data.duration_ms / 1000
    return {
        "success": result.success,
        "failures": step_failures(result),
        "seconds": seconds,
        "step_seconds": step_seconds,
        "emptied_manifest_rows": emptied,
        **metadata,
    }


def run_worker(plan: Path, url: str, first: dt.date, last: dt.date, empty: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", "--plan", str(plan), "--url", url]
    command += ["--first", first.isoformat(), "--last", last.isoformat()]
    out = subprocess.run(
        [*command, *(["--empty-manifest"] if empty else [])], capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"worker failed ({out.returncode}): {' '.join(command)}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if not figures["success"]:
        for step, message in figures["failures"].items():
            print(f"step {step} failed: {message}", file=sys.stderr)
        raise SystemExit(f"run {first}..{last} failed")
    missing = [f for f in FIGURES if f not in figures]
    if missing:
        raise SystemExit(f"run {first}..{last}: no {missing} in {ASSET_KEY} metadata")
    return figures


# -- driver -----------------------------------------------------------------------------


def _same(runs: list[dict], name: str) -> int:
    values = {r[name] for r in runs}
    if len(values) != 1:
        print(f"note: {name} differs between repeats: {sorted(values)}", file=sys.stderr)
    return max(values)


def _median(runs: list[dict], name: str) -> float:
    return statistics.median(r[name] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=dt.date.fromisoformat, default=dt.date(2025, 6, 1))
    parser.add_argument("--last", type=dt.date.fromisoformat, default=dt.date(2026, 11, 25))
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 9, 4))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--plan")
    parser.add_argument("--url")
    parser.add_argument("--empty-manifest", action="store_true")
    args = parser.parse_args()
    if args.worker:
        figures = worker(args.plan, args.url, args.first, args.last, args.empty_manifest)
        print(json.dumps(figures))
        return 0
    if not args.first <= args.day <= args.last:
        parser.error(f"--day {args.day} is outside {args.first}..{args.last}")

    from kpi_pipeline.definitions import DEFAULT_PLAN
    from kpi_pipeline.sources.demo_data import write_demo_exports

    root = Path(tempfile.mkdtemp(prefix="kpi_bench_one_day_"))
    try:
        plan = root / "plan_config" / "demo.yaml"
        plan.parent.mkdir()
        shutil.copy(DEFAULT_PLAN, plan)  # reads ../data/demo/ga4_export_*.csv, i.e. root/data/demo
        exports = write_demo_exports(root / "data" / "demo", args.first, args.last)
        total_bytes = sum(p.stat().st_size for p in exports)
        url = f"duckdb:///{root / 'warehouse.duckdb'}"
        print(
            f"{len(exports)} monthly exports, {total_bytes:,} bytes, in {root}; "
            f"filling {args.first}..{args.last} ...",
            file=sys.stderr,
        )
        fill = run_worker(plan, url, args.first, args.last)
        ours = [run_worker(plan, url, args.day, args.day) for _ in range(args.repeats)]
        naive = [run_worker(plan, url, args.day, args.day, empty=True) for _ in range(args.repeats)]
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    rows = [
        (f"fill {args.first}..{args.last} (once)", [fill]),
        (f"one day {args.day}, manifest (ours)", ours),
        (f"one day {args.day}, manifest emptied (naive)", naive),
    ]
    n = args.repeats
    print(
        f"\nDemo exports {args.first}..{args.last}: {len(exports)} monthly files, "
        f"{total_bytes:,} bytes in all. DuckDB, one process per run; times are medians of "
        f"{n} runs and include Dagster start-up.\n"
    )
    print(
        "| run | files matched | files parsed | bytes parsed | files skipped unchanged "
        "| run s | csv_exports step s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, runs in rows:
        print(
            f"| {label} | {_same(runs, 'files_matched')} | {_same(runs, 'files_parsed')} "
            f"| {_same(runs, 'bytes_parsed'):,} | {_same(runs, 'files_skipped_unchanged')} "
            f"| {_median(runs, 'seconds'):.2f} | {_median(runs, 'step_seconds'):.2f} |"
        )
    ratio = [
        _same(naive, "files_parsed") / max(_same(ours, "files_parsed"), 1),
        _same(naive, "bytes_parsed") / max(_same(ours, "bytes_parsed"), 1),
        _median(naive, "seconds") / _median(ours, "seconds"),
        _median(naive, "step_seconds") / _median(ours, "step_seconds"),
    ]
    print(
        f"| naive / ours | | {ratio[0]:.1f}x | {ratio[1]:.1f}x | "
        f"| {ratio[2]:.2f}x | {ratio[3]:.2f}x |"
    )

    parsed = {r["files_parsed"] for r in ours}
    if parsed != {1}:
        print(
            f"\nFAIL: the one-day run parsed {sorted(parsed)} file(s); expected exactly 1 "
            f"(the export holding {args.day})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
