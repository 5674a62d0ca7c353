"""`kpi-pipeline report`: the plan's HTML report, one self-contained file."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from kpi_pipeline.cli.common import plan_option, plan_reader


def register(commands) -> None:
    report = commands.add_parser(
        "report", help="write the HTML report: each KPI against its path to target"
    )
    plan_option(report)
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to write <plan id>.html to (default: $KPI_REPORT_DIR, else reports/ "
        "beside a DuckDB warehouse file, else ./reports)",
    )
    report.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="report the scores as a run with data up to this day reported them "
        "(from kpi_snapshots); default: the current scores",
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    from kpi_pipeline.reports.html import report_dir, write_report
    from kpi_pipeline.reports.html.frames import NoScoresError
    from kpi_pipeline.reports.html.location import REPORT_DIR_ENV

    loaded, warehouse = plan_reader(args)
    try:
        out = args.out or report_dir(str(warehouse.engine.url), os.environ.get(REPORT_DIR_ENV))
        try:
            path = write_report(warehouse, loaded, out, args.as_of)
        except NoScoresError as exc:
            where = warehouse.engine.url.render_as_string(hide_password=True)
            print(
                f"no report for plan {loaded.plan_id!r} in warehouse {where}: {exc}; run "
                f"`kpi-pipeline run --plan {loaded.path}` first",
                file=sys.stderr,
            )
            return 1
    finally:
        warehouse.dispose()
    print(path)
    return 0
