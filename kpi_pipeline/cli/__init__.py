"""`kpi-pipeline`: validate a plan, make demo data, run the Dagster job, print the scorecard.

`run` materializes the very assets of `definitions.py` through the daily job, over one
partition or a whole range in a single run: the CLI never re-implements the pipeline.
Each command lives in its own module with a `register(commands)` that adds its parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kpi_pipeline.cli import demo, plan_commands, run, scorecard
from kpi_pipeline.plan.loader import PlanError

# Order is the order `kpi-pipeline --help` lists them.
COMMANDS = [
    plan_commands.register_validate,
    plan_commands.register_schema,
    demo.register,
    run.register,
    scorecard.register,
    plan_commands.register_prune,
    plan_commands.register_grant,
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PlanError as exc:
        print(exc, file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpi-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command(commands)
    return parser
