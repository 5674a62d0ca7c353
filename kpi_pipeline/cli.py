"""`kpi-pipeline`: validate a plan, make demo data, run the Dagster job, print the scorecard.

`run` materializes the very assets of `definitions.py` through the daily job, over one
partition or a whole range in a single run: the CLI never re-implements the pipeline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kpi_pipeline.plan.loader import PlanError, load_plan
from kpi_pipeline.plan.models import Plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PlanError as exc:
        print(exc, file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpi-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check a plan file and summarise it")
    validate.add_argument("plan", type=Path)
    validate.set_defaults(handler=_validate)

    schema = commands.add_parser("schema", help="print the plan's JSON Schema")
    schema.set_defaults(handler=_schema)

    demo = commands.add_parser("demo-data", help="write the seeded demo CSV exports")
    demo.add_argument("--out", type=Path, default=Path("data/demo"))
    demo.add_argument("--start", type=dt.date.fromisoformat, default=None)
    demo.add_argument("--end", type=dt.date.fromisoformat, default=None)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_demo_data)

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

    scorecard = commands.add_parser("scorecard", help="print the latest closed period's scores")
    _plan_option(scorecard)
    scorecard.set_defaults(handler=_scorecard)

    prune = commands.add_parser(
        "prune",
        help="delete the plan's raw rows of sources it no longer declares, saying how many",
    )
    _plan_option(prune)
    prune.add_argument("--dry-run", action="store_true", help="count the rows, delete nothing")
    prune.set_defaults(handler=_prune)

    grant = commands.add_parser(
        "grant-readonly", help="let a PostgreSQL role SELECT a plan's marts and nothing else"
    )
    grant.add_argument("role", help="an existing role (lower-case letters, digits, _)")
    _plan_option(grant)
    grant.set_defaults(handler=_grant_readonly)
    return parser


def _plan_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plan", type=Path, default=None, help="plan file (default: $KPI_PLAN or demo)"
    )


def _plan_path(args: argparse.Namespace) -> Path:
    from kpi_pipeline.definitions import DEFAULT_PLAN

    return Path(args.plan or os.environ.get("KPI_PLAN") or DEFAULT_PLAN)


def _plan_warehouse(args: argparse.Namespace):
    """The plan (loaded) and the warehouse scoped to its schemas."""
    from kpi_pipeline.warehouse.engine import DEFAULT_WAREHOUSE_URL, Warehouse

    loaded = load_plan(_plan_path(args))
    url = os.environ.get("KPI_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
    return loaded, Warehouse.from_url(url, loaded.plan_id)


def _validate(args: argparse.Namespace) -> int:
    loaded = load_plan(args.plan)
    plan = loaded.plan
    print(
        f"{args.plan}: valid plan for {plan.organization} — "
        f"{len(plan.objectives)} objectives, {len(plan.iter_tactics())} tactics, "
        f"{len(plan.iter_kpis())} KPIs, timezone {plan.timezone}, plan id {loaded.plan_id}, "
        f"hash {loaded.plan_hash}"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(Plan.model_json_schema(), indent=2))
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from kpi_pipeline.sources.demo_data import DEMO_END, DEMO_START, write_demo_exports

    paths = write_demo_exports(args.out, args.start or DEMO_START, args.end or DEMO_END, args.seed)
    print(f"wrote {len(paths)} demo export files to {args.out}/")
    return 0


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
    plan_path = _plan_path(args)
    plan = load_plan(plan_path).plan
    yesterday = last_closed_day(dt.datetime.now(dt.UTC), plan.timezone)
    first = args.first or args.date or yesterday
    last = args.last or first
    if last < first:
        print(f"--to {last} is before --from {first}", file=sys.stderr)
        return 2
    result = run_days(
        plan_path,
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


def _scorecard(args: argparse.Namespace) -> int:
    from kpi_pipeline.reports.scorecard import format_scorecard, latest_closed_scores

    loaded, warehouse = _plan_warehouse(args)
    try:
        if not warehouse.table_exists("marts", "kpi_scores"):
            print(
                f"no scores yet for plan {loaded.plan_id!r} in this warehouse: run "
                f"`kpi-pipeline run --plan {loaded.path}` first",
                file=sys.stderr,
            )
            return 1
        print(format_scorecard(latest_closed_scores(warehouse)))
    finally:
        warehouse.dispose()
    return 0


def _prune(args: argparse.Namespace) -> int:
    from kpi_pipeline.loading.plans import prune_undeclared

    loaded, warehouse = _plan_warehouse(args)
    try:
        found = prune_undeclared(warehouse, loaded, dry_run=args.dry_run)
    finally:
        warehouse.dispose()
    verb = "would delete" if args.dry_run else "deleted"
    for item in found:
        print(
            f"{verb} {item.rows:,} row(s) of undeclared source {item.source_id!r} from {item.table}"
        )
    total = sum(item.rows for item in found)
    print(
        f"plan {loaded.plan_id!r}: {verb} {total:,} row(s) of sources the plan no longer declares"
    )
    return 0


def _grant_readonly(args: argparse.Namespace) -> int:
    from kpi_pipeline.warehouse.engine import WarehouseError

    _, warehouse = _plan_warehouse(args)
    try:
        statements = warehouse.grant_readonly(args.role)
    except WarehouseError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        warehouse.dispose()
    print("\n".join(f"{statement};" for statement in statements))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
