"""Fixed overhead of a one-day run on the demo (DuckDB): where the seconds go.

    .venv/bin/python bench/fixed_overhead.py --demo /tmp/demo_full --date 2026-11-25
    .venv/bin/python bench/fixed_overhead.py --demo DIR --date D --repeat 3 --json out.json

`--demo` is a folder holding `plan_config/demo.yaml`, `data/demo/*.csv` and a built
warehouse `warehouse/demo_readonly.duckdb` (the full demo history), with the report that
build wrote (`warehouse/reports/`, copied when present: a run draws the page again only when
what it shows changed); it is never written: every repetition runs on a fresh copy in a
temporary folder (its `data/` linked to the demo's, as a daily run finds its exports). To
build one, history through the day before `--date`:

    mkdir -p /tmp/demo_full/plan_config && cp plan_config/demo.yaml /tmp/demo_full/plan_config/
    cd /tmp/demo_full && kpi-pipeline demo-data --out data/demo --start 2025-06-01 --end 2026-11-25
    KPI_WAREHOUSE_URL=duckdb:////tmp/demo_full/warehouse/demo_readonly.duckdb \
      kpi-pipeline run --quiet --plan plan_config/demo.yaml --from 2025-06-01 --to 2026-11-24

Two measurements, each repeated `--repeat` times (medians reported, with the load average):
- `cli`: wall time of `kpi-pipeline run --date D` as a person runs it (a new process), then
  `cli_again`: the same command again on the same copy (nothing changed: the report is kept).
- `phases`: the same run in a new process, split into Python imports (kpi_pipeline.runs and
  what it pulls in), the Definitions build, Dagster start-up (execute_in_process called to
  the first step starting), the steps themselves (sum of each step's start to end), what
  is left between steps (Dagster's plan walking, resources, logging), and the time spent
  writing events to the run's event storage, with the number of events.

Not a test: figures go in the README ("Running at scale").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `python -m kpi_pipeline.cli` is the `kpi-pipeline` command, and honours PYTHONPATH (to
# measure another copy of the code, e.g. a `git archive` of the last commit).
CLI = [sys.executable, "-m", "kpi_pipeline.cli"]


def _copy_demo(demo: Path, into: Path) -> tuple[Path, str]:
    """A private copy of the demo plan and warehouse: runs may write to it. The data folder
    is linked, not copied: the file manifest knows each export by its resolved path, size
    and modification time, so a daily run in the same project leaves the files outside its
    days unopened. A copy (new paths) would make every run parse all 18 months again."""
    shutil.copytree(demo / "plan_config", into / "plan_config")
    (into / "data").symlink_to((demo / "data").resolve(), target_is_directory=True)
    (into / "warehouse").mkdir()
    if (demo / "warehouse" / "reports").is_dir():
        shutil.copytree(demo / "warehouse" / "reports", into / "warehouse" / "reports")
    warehouse = into / "warehouse" / "kpi.duckdb"
    shutil.copy(demo / "warehouse" / "demo_readonly.duckdb", warehouse)
    return into / "plan_config" / "demo.yaml", f"duckdb:///{warehouse}"


def _clean_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "KPI_PLAN")}
    env["KPI_WAREHOUSE_URL"] = url
    return env


def measure_cli(demo: Path, day: str) -> tuple[float, float]:
    """The run on a fresh copy, then the same run again on that copy."""
    with tempfile.TemporaryDirectory(prefix="fixed_overhead_") as tmp:
        plan, url = _copy_demo(demo, Path(tmp))
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run(
                [*CLI, "run", "--quiet", "--plan", str(plan), "--date", day],
                env=_clean_env(url),
                cwd=tmp,
                check=True,
            )
            seconds.append(time.perf_counter() - started)
        return seconds[0], seconds[1]


def measure_phases(demo: Path, day: str, first: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="fixed_overhead_") as tmp:
        plan, url = _copy_demo(demo, Path(tmp))
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(plan), url, day, first or day],
            env=_clean_env(url),
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])


def child(plan: str, url: str, day: str, first: str) -> None:
    """One timed run of [first, day] in this (fresh) process; prints its phases as JSON."""
    started = time.perf_counter()
    try:  # the collector as the `kpi-pipeline` process sets it (cli/process.py)
        from kpi_pipeline.cli.process import GC_THRESHOLDS

        gc.set_threshold(*GC_THRESHOLDS)
    except ImportError:  # the code before it existed
        pass
    import datetime as dt

    import dagster as dg

    from kpi_pipeline.definitions import build_definitions
    from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
    from kpi_pipeline.runs import RunProgress, run_days

    imported = time.perf_counter()
    build_definitions(plan, warehouse_url=url).resolve_job_def(DAILY_JOB_NAME)
    built = time.perf_counter()

    try:  # what `run_days` uses without an instance (the CLI without DAGSTER_HOME)
        from kpi_pipeline.runs import process_only_instance

        instance = process_only_instance()
    except ImportError:  # the code before it existed
        instance = dg.DagsterInstance.ephemeral()
    storage = instance.event_log_storage
    writes = {"seconds": 0.0, "events": 0}
    store_event = storage.store_event

    def timed_store_event(event, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return store_event(event, *args, **kwargs)
        finally:
            writes["seconds"] += time.perf_counter() - t0
            writes["events"] += 1

    storage.store_event = timed_store_event  # type: ignore[method-assign]
    day_ = dt.date.fromisoformat(day)
    run_started_wall = time.time()
    run_started = time.perf_counter()
    # run_days builds the Definitions again (as the CLI does): that second build is part of
    # the run's time, and measured on its own above.
    # Quiet like the CLI: a progress logger that collects, no console logger.
    result = run_days(
        plan,
        dt.date.fromisoformat(first),
        day_,
        warehouse_url=url,
        instance=instance,
        progress=RunProgress(),
    )
    finished = time.perf_counter()
    assert result.success, "the run failed"
    starts, durations = {}, {}
    first_step = None
    for record in instance.all_logs(result.run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = record.timestamp
            first_step = record.timestamp if first_step is None else first_step
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            durations[event.step_key] = record.timestamp - starts[event.step_key]
    steps_total = sum(durations.values())
    startup = (first_step or run_started_wall) - run_started_wall
    run_seconds = finished - run_started
    print(
        json.dumps(
            {
                "imports": imported - started,
                "definitions": built - imported,
                "startup": startup,
                "steps": steps_total,
                "between_steps": run_seconds - startup - steps_total,
                "event_writes": writes["seconds"],
                "events": writes["events"],
                "step_count": len(starts),
                "run": run_seconds,
                "total": finished - started,
                "step_seconds": durations,
            }
        )
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo", type=Path, default=Path("/tmp/demo_full"))
    parser.add_argument("--date", default="2026-11-25")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--range-days",
        type=int,
        default=0,
        help="instead: one range run of this many days ending --date (events per day)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    if args.range_days:
        import datetime as dt

        first = dt.date.fromisoformat(args.date) - dt.timedelta(days=args.range_days - 1)
        phases = measure_phases(args.demo, args.date, first.isoformat())
        phases.pop("step_seconds")
        print(f"range run of {args.range_days} days, load {load_before} -> {os.getloadavg()}")
        for key, value in phases.items():
            print(f"  {key:14} {value:8.2f}")
        return 0
    both = [measure_cli(args.demo, args.date) for _ in range(args.repeat)]
    cli, cli_again = [b[0] for b in both], [b[1] for b in both]
    phases = [measure_phases(args.demo, args.date) for _ in range(args.repeat)]
    load_after = os.getloadavg()
    median = {
        key: statistics.median(p[key] for p in phases) for key in phases[0] if key != "step_seconds"
    }
    steps = {
        step: statistics.median(p["step_seconds"].get(step, 0.0) for p in phases)
        for step in phases[0]["step_seconds"]
    }
    print(f"one-day run of the demo on DuckDB, {args.repeat} repetitions (medians)")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print(f"cli wall time: {statistics.median(cli):.1f} s  (runs: {[round(c, 1) for c in cli]})")
    print(
        f"cli wall time, the same day again: {statistics.median(cli_again):.1f} s  "
        f"(runs: {[round(c, 1) for c in cli_again]})"
    )
    for key, value in median.items():
        unit = "" if key in ("events", "step_count") else " s"
        print(f"  {key:14} {value:8.2f}{unit}")
    print("slowest steps:")
    for step, seconds in sorted(steps.items(), key=lambda item: -item[1])[:10]:
        print(f"  {step:50} {seconds:6.2f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cli": cli,
                    "cli_again": cli_again,
                    "phases": phases,
                    "median": median,
                    "load": [load_before, load_after],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
