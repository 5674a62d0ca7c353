"""`kpi-pipeline scorecard`: the latest closed period's scores as a table, CSV, JSON or markdown."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from kpi_pipeline.cli.common import plan_option, plan_path, plan_reader, warehouse_url
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.models import Grain

GRAINS = tuple(grain.value for grain in Grain)
# As reports.scorecard.FORMATS, which is imported only when the command runs (pandas, SQL).
FORMATS = ("table", "csv", "json", "markdown")


def register(commands) -> None:
    scorecard = commands.add_parser(
        "scorecard",
        help="print the latest closed period's scores",
        description="Per KPI and grain, the latest closed period's value against its path.",
    )
    plan_option(scorecard)
    scorecard.add_argument(
        "--kpi",
        action="append",
        metavar="ID",
        help="only these KPIs (repeat, or a comma list: --kpi a,b)",
    )
    scorecard.add_argument("--grain", choices=GRAINS, help="only this grain")
    scorecard.add_argument(
        "--periods",
        type=_positive_int,
        metavar="N",
        help="add a trend column: a sparkline of the last N closed periods",
    )
    scorecard.add_argument("--format", choices=FORMATS, default="table", dest="output_format")
    scorecard.add_argument(
        "--wide",
        action="store_true",
        help="table/markdown: also the value's interval, the forecast at the deadline with "
        "its interval and the projected status (CSV and JSON always have them)",
    )
    scorecard.set_defaults(handler=_scorecard)


def _scorecard(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    # Options are checked against the plan before the warehouse is opened: a typo in --kpi
    # is a usage error whatever state the warehouse is in.
    loaded = load_plan(plan_path(args))
    kpis = [kpi for _, kpi in loaded.plan.iter_kpis()]
    valid = [kpi.id for kpi in kpis]
    chosen = _chosen_kpis(args.kpi)
    unknown = [kpi_id for kpi_id in chosen or () if kpi_id not in valid]
    if unknown:
        named = ", ".join(map(repr, unknown))
        print(
            f"unknown KPI id{'s' if len(unknown) > 1 else ''} {named} in plan "
            f"{loaded.plan_id!r}; valid ids: {', '.join(valid)}",
            file=sys.stderr,
        )
        return 2
    selected = [kpi for kpi in kpis if chosen is None or kpi.id in chosen]
    if args.grain and not any(args.grain in kpi.grains for kpi in selected):
        print(_grain_not_measured_message(loaded, selected, args.grain), file=sys.stderr)
        return 2
    _, warehouse = plan_reader(args)  # read-only: never waits for (or blocks) a run
    try:
        return _print_scorecard(args, loaded, warehouse, chosen, selected)
    except OperationalError as exc:
        # A connection lost after opening: one line naming the warehouse, no password.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"cannot read warehouse {_masked_url()}: {reason}", file=sys.stderr)
        return 1
    finally:
        warehouse.dispose()


def _print_scorecard(args, loaded, warehouse, chosen, selected) -> int:
    from kpi_pipeline.reports.scorecard import (
        closed_trends,
        latest_closed_scores,
        render_scorecard,
        with_deadlines,
        with_trends,
    )

    if not warehouse.table_exists("marts", "kpi_scores"):
        print(_no_scores_message(loaded), file=sys.stderr)
        return 1
    grains = [args.grain] if args.grain else None
    scores = latest_closed_scores(warehouse, chosen, grains)
    if scores.empty:
        print(
            f"no closed {args.grain or 'period'} yet for "
            f"{', '.join(kpi.id for kpi in selected)} in plan {loaded.plan_id!r}: every "
            "period scored so far is still partial",
            file=sys.stderr,
        )
        return 1
    if args.periods:
        scores = with_trends(scores, closed_trends(warehouse, args.periods, chosen, grains))
    scores = with_deadlines(scores, {kpi.id: kpi.target.by for kpi in selected})
    print(render_scorecard(scores, args.output_format, wide=args.wide))
    return 0


def _chosen_kpis(values: list[str] | None) -> list[str] | None:
    """`--kpi a --kpi b,c` as [a, b, c] (first mention order, each once); None: all KPIs."""
    if not values:
        return None
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(ids)) or None


def _no_scores_message(loaded) -> str:
    url = _masked_url()
    source = " ($KPI_WAREHOUSE_URL)" if os.environ.get("KPI_WAREHOUSE_URL") else ""
    # The run command reads the same environment, so it writes where this command reads.
    command = f"kpi-pipeline run --plan {shlex.quote(str(loaded.path.resolve()))}"
    return (
        f"no scores yet for plan {loaded.plan_id!r} ({loaded.path.resolve()}) in warehouse "
        f"{url}{source}: run `{command}` first (yesterday; add --from D1 --to D2 for a range)"
    )


def _masked_url() -> str:
    """The warehouse URL as configured (the engine may read a snapshot), password masked."""
    from kpi_pipeline.warehouse.reading import masked_url

    return masked_url(warehouse_url())


def _grain_not_measured_message(loaded, selected, grain: str) -> str:
    declared = sorted({g.value for kpi in selected for g in kpi.grains}, key=GRAINS.index)
    return (
        f"no KPI of {', '.join(kpi.id for kpi in selected)} is measured by {grain} in plan "
        f"{loaded.plan_id!r} (their grains: {', '.join(declared)})"
    )


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number
