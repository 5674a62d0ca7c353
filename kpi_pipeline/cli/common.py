"""What several commands share: the plan option, the plan's path and its warehouse."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kpi_pipeline.plan.loader import load_plan


def plan_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plan", type=Path, default=None, help="plan file (default: $KPI_PLAN or demo)"
    )


def plan_path(args: argparse.Namespace) -> Path:
    from kpi_pipeline.definitions import DEFAULT_PLAN

    return Path(args.plan or os.environ.get("KPI_PLAN") or DEFAULT_PLAN)


def plan_warehouse(args: argparse.Namespace):
    """The plan (loaded) and the warehouse scoped to its schemas."""
    from kpi_pipeline.warehouse.engine import DEFAULT_WAREHOUSE_URL, Warehouse

    loaded = load_plan(plan_path(args))
    url = os.environ.get("KPI_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
    return loaded, Warehouse.from_url(url, loaded.plan_id)
