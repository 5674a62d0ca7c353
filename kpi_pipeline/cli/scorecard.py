"""`kpi-pipeline scorecard`: the latest closed period's scores, as text."""

from __future__ import annotations

import argparse
import sys

from kpi_pipeline.cli.common import plan_option, plan_warehouse


def register(commands) -> None:
    scorecard = commands.add_parser("scorecard", help="print the latest closed period's scores")
    plan_option(scorecard)
    scorecard.set_defaults(handler=_scorecard)


def _scorecard(args: argparse.Namespace) -> int:
    from kpi_pipeline.reports.scorecard import format_scorecard, latest_closed_scores

    loaded, warehouse = plan_warehouse(args)
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
