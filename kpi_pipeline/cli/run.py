"""`kpi-pipeline run`: the daily job over one day or a range, through Dagster.

Before Dagster starts, everything a person can fix is checked and refused in one line
(exit 2): the days against [history_start, yesterday in the plan's time zone], the
variables the plan's sources read their credentials from, the warehouse URL and its
connection. A busy DuckDB file is exit 1 (the run changed nothing; re-run later).
While the run goes, one line per stage on stderr (a progress bar too on a terminal);
at the end a summary on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from kpi_pipeline.cli.common import plan_path, warehouse_url
from kpi_pipeline.cli.errors import RUN_FAILED, UsageError
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.models import Plan


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
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every SQL model and score from all history (by default a run "
        "recomputes only the periods holding the days whose data changed)",
    )
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument(
        "--quiet", action="store_true", help="print nothing but errors (for cron)"
    )
    loudness.add_argument(
        "--verbose", action="store_true", help="show every Dagster event (DEBUG) instead of stages"
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # Dagster is imported only for commands that run it: `validate` stays instant.
    import dagster as dg

    from kpi_pipeline.defs.partitions import ALLOW_MISSING_TAG
    from kpi_pipeline.defs.sources.ga4_assets import ROLLBACK_TAG
    from kpi_pipeline.metrics.periods import last_closed_day
    from kpi_pipeline.runs import RunProgress, check_summary, run_days, run_summary, step_failures
    from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG
    from kpi_pipeline.warehouse.reading import masked_url

    if args.rollback < 0:
        raise UsageError("--rollback needs a number of days, 0 or more")
    if args.last and not args.first:
        raise UsageError("--to needs --from")
    path = plan_path(args)
    loaded = load_plan(path)
    plan = loaded.plan
    yesterday = last_closed_day(dt.datetime.now(dt.UTC), plan.timezone)
    first = args.first or args.date or yesterday
    last = args.last or first
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    check_days(args, first, last, plan, yesterday, path)
    check_credentials(plan, os.environ)
    url = warehouse_url()
    previous = prepare_warehouse(url, loaded.plan_id)
    progress = RunProgress(
        write=None if args.quiet or args.verbose else _stderr_line,
        bar_stream=sys.stderr if sys.stderr.isatty() and not (args.quiet or args.verbose) else None,
    )
    if progress.write is not None:
        progress.write(
            f"run: plan {loaded.plan_id!r}, {(last - first).days + 1} day(s) {first}..{last}, "
            f"warehouse {masked_url(url)}"
        )
    try:
        result = run_days(
            path,
            first,
            last,
            instance=dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None,
            log_level="DEBUG" if args.verbose else None,
            tags={
                **({ROLLBACK_TAG: str(args.rollback)} if args.rollback else {}),
                **({ALLOW_MISSING_TAG: "1"} if args.allow_missing else {}),
                **({FULL_REFRESH_TAG: "1"} if args.full_refresh else {}),
            },
            progress=progress,
        )
    finally:
        progress.finish()
    checks = check_summary(result)
    if not result.success:
        for line in checks.failed:
            print(line, file=sys.stderr)
        for step, message in step_failures(result).items():
            print(f"step {step} failed: {message}", file=sys.stderr)
        if getattr(args, "debug", False):
            _print_step_tracebacks(result)
        # Tell the plan's alert channels (or leave it to a watching daemon's sensor).
        from kpi_pipeline.defs.alerts_assets import notify_cli_run_failure_directly

        for line in notify_cli_run_failure_directly(path, result):
            print(line, file=sys.stderr)
        return RUN_FAILED
    if args.quiet:
        return 0
    for line in checks.failed:
        print(line, file=sys.stderr)
    days = (last - first).days + 1
    print(f"run {result.run_id} materialized {days} day(s) {first}..{last}")
    for line in run_summary(progress, checks, previous, masked_url(url)).lines():
        print(line)
    print(
        f"data checks: {checks.passed} passed, {len(checks.failed)} failed"
        + (" (see above; marts.check_results has the history)" if checks.failed else "")
    )
    return 0


def check_days(
    args: argparse.Namespace,
    first: dt.date,
    last: dt.date,
    plan: Plan,
    yesterday: dt.date,
    path: Path,
) -> None:
    """Refuse days before the plan's history or not over yet in the plan's time zone."""
    first_flag = "--from" if args.first else "--date" if args.date else "the default day"
    last_flag = "--to" if args.last else first_flag
    if first < plan.history_start:
        raise UsageError(
            f"{first_flag} {first} is before the plan's history_start {plan.history_start} "
            f"({path}): runs load days from {plan.history_start} on (or move history_start "
            "earlier in the plan)"
        )
    if last > yesterday:
        raise UsageError(
            f"{last_flag} {last} is not over yet in the plan's time zone {plan.timezone}: "
            f"the last day a run can load is {yesterday}"
        )


def check_credentials(plan: Plan, environ: Mapping[str, str]) -> None:
    """Each declared GA4 or email source reads its credentials from a variable: it must be set."""
    needed = [
        (s.credentials_env_var, f"GA4 source {s.id!r}", "the path of its service-account key file")
        for s in plan.sources.ga4
    ] + [
        (s.api_key_env_var, f"email source {s.id!r} ({s.platform})", "its API key")
        for s in plan.sources.email
    ]
    for variable, source, value in needed:
        if not environ.get(variable):
            raise UsageError(
                f"environment variable {variable} is not set: {source} reads {value} from it "
                f"(export {variable}=..., or remove the source from the plan)"
            )


def prepare_warehouse(url: str, plan_id: str) -> dict[str, dict[str, str]]:
    """Check the warehouse before Dagster starts (supported URL, connection, DuckDB file not
    held by another run) and return the latest statuses, to count what the run changes."""
    from kpi_pipeline.metrics.score_tables import latest_closed_statuses
    from kpi_pipeline.warehouse.engine import Warehouse
    from kpi_pipeline.warehouse.reading import check_url, connect_or_explain

    check_url(url)
    warehouse = Warehouse.from_url(url, plan_id)
    try:
        connect_or_explain(warehouse, url)
        if not warehouse.table_exists("marts", "kpi_scores"):
            return {}
        scores = warehouse.read_frame(
            "select kpi_id, grain, period_start, status, is_partial, segment_type "
            f"from {warehouse.relation('marts', 'kpi_scores')} where segment_type = 'all'"
        )
        return latest_closed_statuses(scores)
    finally:
        warehouse.dispose()


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_step_tracebacks(result) -> None:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            print(event.step_failure_data.error.to_string(), file=sys.stderr)
