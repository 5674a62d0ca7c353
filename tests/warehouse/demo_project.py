"""The demo plan and its generated exports in a temporary folder, run through the real job."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from kpi_pipeline.definitions import DEFAULT_PLAN
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.sources.demo_data import write_demo_exports
from kpi_pipeline.warehouse.engine import read_frame_once

__all__ = ["FIRST_DAY", "LAST_DAY", "DemoProject", "step_failures"]

# Two ISO weeks, Monday 3 to Sunday 16 August 2026, with the demo's broken row of the 9th.
FIRST_DAY = dt.date(2026, 8, 3)
LAST_DAY = dt.date(2026, 8, 16)


@dataclass
class DemoProject:
    plan_path: Path
    warehouse_url: str

    @classmethod
    def create(cls, root: Path, warehouse_url: str) -> DemoProject:
        plan_path = root / "plan_config" / "demo.yaml"
        plan_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEFAULT_PLAN, plan_path)  # reads ../data/demo/ relative to itself
        write_demo_exports(root / "data" / "demo", FIRST_DAY, LAST_DAY, 7)
        return cls(plan_path, warehouse_url)

    def run(self, first: dt.date = FIRST_DAY, last: dt.date = LAST_DAY):
        return run_days(self.plan_path, first, last, warehouse_url=self.warehouse_url)

    def read(self, sql: str):
        return read_frame_once(self.warehouse_url, sql, plan_id=load_plan(self.plan_path).plan_id)
