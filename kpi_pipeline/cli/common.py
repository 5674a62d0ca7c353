"""What several commands share: the plan option, the plan's path and its warehouse."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kpi_pipeline.plan.loader import load_plan


def plan_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plan", type=Path, default=None, help="plan file (default: $KPI_PLAN or demo)"
    )


def plan_path(args: argparse.Namespace) -> Path:
    from kpi_pipeline.definitions import DEFAULT_PLAN

    return Path(args.plan or os.environ.get("KPI_PLAN") or DEFAULT_PLAN)


def warehouse_url() -> str:
    """$KPI_WAREHOUSE_URL, else the default DuckDB file (relative to the current folder)."""
    from kpi_pipeline.warehouse.engine import DEFAULT_WAREHOUSE_URL

    return os.environ.get("KPI_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL


def plan_warehouse(args: argparse.Namespace, *, read_only: bool | None = None):
    """The plan (loaded) and the warehouse scoped to its schemas, as a command outside a run
    opens it (`kpi_pipeline.warehouse.reading`): a DuckDB file is never created here.

    `read_only=True` for commands that only read; `False` for commands that must write
    (a busy file is then an error); the default writes when the DuckDB file is free and,
    when a run holds it, reads a snapshot instead (a write then fails with one clear line).
    """
    from kpi_pipeline.warehouse.reading import open_warehouse

    loaded = load_plan(plan_path(args))
    warehouse = open_warehouse(warehouse_url(), loaded.plan_id, read_only=read_only)
    note = getattr(warehouse, "access", None)
    if note is not None and note.note():
        print(note.note(), file=sys.stderr)
    return loaded, warehouse


def plan_reader(args: argparse.Namespace):
    """`plan_warehouse` for a command that only reads: never blocks, never blocked by a run."""
    return plan_warehouse(args, read_only=True)
