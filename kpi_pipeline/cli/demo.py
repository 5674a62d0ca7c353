"""`kpi-pipeline demo-data`: the seeded demo CSV exports."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path


def register(commands) -> None:
    demo = commands.add_parser("demo-data", help="write the seeded demo CSV exports")
    demo.add_argument("--out", type=Path, default=Path("data/demo"))
    demo.add_argument("--start", type=dt.date.fromisoformat, default=None)
    demo.add_argument("--end", type=dt.date.fromisoformat, default=None)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=_demo_data)


def _demo_data(args: argparse.Namespace) -> int:
    from kpi_pipeline.cli.errors import UsageError
    from kpi_pipeline.sources.demo_data import DEMO_END, DEMO_START, write_demo_exports

    start, end = args.start or DEMO_START, args.end or DEMO_END
    if start > end:
        raise UsageError(
            f"--start {start} is after --end {end}"
            + (
                ""
                if args.start and args.end
                else f" (the demo's default range is {DEMO_START}..{DEMO_END})"
            )
        )
    paths = write_demo_exports(args.out, start, end, args.seed)
    print(f"wrote {len(paths)} demo export files to {args.out}/")
    return 0
