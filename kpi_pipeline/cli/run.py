"""`kpi-pipeline run`: the daily job over one day or a range, through Dagster."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from kpi_pipeline.cli.common import plan_path
from kpi_pipeline.plan.loader import load_plan


def register(commands) -> None:
    run = commands.add_parser("run", help="run the daily job for a day or a range of days")
    run.add_argument(
        "--plan", type=Path, default=None, help="plan file (default: $KPI_PLAN or demo)"
    )
    when = run.add_mutually_exclusive_group()
    when.add_argument("--date", type=dt.date.fromisoformat, help="one day (default: yesterday)")
    when.add_argument("--from", dest="first", type=dt.date.fromisoformat, help="first day")
    run.add_argument("--to", dest="last", type=dt.date.fromisoformat, help="last day (with --from)")
    run.add_argument(
        "--rollback",
        type=int,
        default=0,
        metavar="N",
        help="also re-pull the N days before the first day from GA4 (revisions)",
    )
    run.add_argument(
        "--allow-missing",
        action="store_true",
        help="accept days that had rows and now read none (they become empty); by default "
        "such days keep their rows and the run fails",
    )
    run.add_argument("--verbose", action="store_true", help="show every Dagster event")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # Dagster is imported only for commands that run it: `validate` stays instant.
    import dagster as dg

    from kpi_pipeline.defs.partitions import ALLOW_MISSING_TAG
    from kpi_pipeline.defs.sources.ga4_assets import ROLLBACK_TAG
    from kpi_pipeline.metrics.periods import last_closed_day
    from kpi_pipeline.runs import check_summary, run_days, step_failures

    if args.rollback < 0:
        print("--rollback needs a number of days, 0 or more", file=sys.stderr)
        return 2
    if args.last and not args.first:
        print("--to needs --from", file=sys.stderr)
        return 2
    path = plan_path(args)
    plan = load_plan(path).plan
    yesterday = last_closed_day(dt.datetime.now(dt.UTC), plan.timezone)
    first = args.first or args.date or yesterday
    last = args.last or first
    if last < first:
        print(f"--to {last} is before --from {first}", file=sys.stderr)
        return 2
    result = run_days(
        path,
        first,
        last,
        instance=dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None,
        log_level="DEBUG" if args.verbose else "WARNING",
        tags={
            **({ROLLBACK_TAG: str(args.rollback)} if args.rollback else {}),
            **({ALLOW_MISSING_TAG: "1"} if args.allow_missing else {}),
        },
    )
    checks = check_summary(result)
    for line in checks.failed:
        print(line, file=sys.stderr)
    if not result.success:
        for step, message in step_failures(result).items():
            print(f"step {step} failed: {message}", file=sys.stderr)
        return 1
    days = (last - first).days + 1
    print(f"run {result.run_id} materialized {days} day(s) {first}..{last}")
    print(
        f"data checks: {checks.passed} passed, {len(checks.failed)} failed"
        + (" (see above; marts.check_results has the history)" if checks.failed else "")
    )
    return 0
