"""`kpi-pipeline`: validate a plan, make demo data, run the Dagster job, print the scorecard.

`run` materializes the very assets of `definitions.py` through the daily job, over one
partition or a whole range in a single run: the CLI never re-implements the pipeline.
Each command lives in its own module with a `register(commands)` that adds its parser.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import traceback
from collections.abc import Sequence

from kpi_pipeline.cli import demo, init, plan_commands, report, run, scorecard
from kpi_pipeline.cli.errors import classify
from kpi_pipeline.cli.process import command_process

# Order is the order `kpi-pipeline --help` lists them.
COMMANDS = [
    init.register,
    plan_commands.register_validate,
    plan_commands.register_schema,
    demo.register,
    run.register,
    scorecard.register,
    report.register,
    plan_commands.register_prune,
    plan_commands.register_grant,
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a known failure is one line on stderr and an exit code (errors.py)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            traceback.print_exc()
        outcome = classify(exc)
        print(f"kpi-pipeline: {outcome.message}", file=sys.stderr)
        return outcome.code


def entry() -> int:
    """The `kpi-pipeline` command as its own process (the console script, `python -m`):
    `main` with the collector set for a process that runs one command and exits."""
    with command_process():
        return main()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpi-pipeline",
        description=__doc__.splitlines()[0],
        epilog="exit codes: 0 ok, 1 the run failed, 2 usage or configuration error",
    )
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of a failure, not just its line"
    )
    version = importlib.metadata.version("kpi-pipeline")  # of the installed distribution
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for command in COMMANDS:
        command(commands)
    return parser
