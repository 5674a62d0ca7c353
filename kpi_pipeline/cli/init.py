"""`kpi-pipeline init DIR`: a working project for one's own data (kpi_pipeline/scaffold)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def register(commands) -> None:
    init = commands.add_parser(
        "init",
        help="write a new project: plan template, sample export, Dagster code location",
    )
    init.add_argument("folder", type=Path, metavar="DIR", help="a new or empty folder")
    init.set_defaults(handler=_init)


def _init(args: argparse.Namespace) -> int:
    from kpi_pipeline.scaffold import (
        PLAN_FILE,
        SAMPLE_FIRST_DAY,
        SAMPLE_LAST_DAY,
        FolderNotEmptyError,
        ProjectNames,
        write_project,
    )

    try:
        written = write_project(args.folder)
    except FolderNotEmptyError as exc:
        print(f"kpi-pipeline: {exc}", file=sys.stderr)
        return 2
    names = ProjectNames.for_folder(args.folder)
    print(f"wrote project {names.project!r} into {args.folder}/:")
    for path in written:
        print(f"  {path.relative_to(args.folder)}")
    plan = PLAN_FILE
    print(
        "next, try it on the sample export, then put yours in data/exports/ and edit the plan "
        "(README.md walks through it):\n"
        f"  cd {shlex.quote(str(args.folder))}\n"
        f"  kpi-pipeline validate {plan}\n"
        f"  kpi-pipeline run --plan {plan} --from {SAMPLE_FIRST_DAY} --to {SAMPLE_LAST_DAY}\n"
        f"  kpi-pipeline scorecard --plan {plan}"
    )
    return 0
