"""The demo plan and its generated exports in a temporary folder, run through the real job."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kpi_pipeline.definitions import DEFAULT_PLAN, build_definitions
from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
from kpi_pipeline.sources.demo_data import write_demo_exports
from kpi_pipeline.warehouse.engine import Warehouse

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
        defs = build_definitions(self.plan_path, warehouse_url=self.warehouse_url)
        return defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            },
            raise_on_error=False,
        )

    def read(self, sql: str):
        warehouse = Warehouse.from_url(self.warehouse_url)
        try:
            return warehouse.read_frame(sql)
        finally:
            warehouse.dispose()


def step_failures(result) -> dict[str, str]:
    """{step key: error message} of a run's failed steps."""
    failures = {}
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause  # the asset's own exception, not Dagster's wrapper
            failures[event.step_key] = error.message if error else ""
    return failures
