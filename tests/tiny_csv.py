"""The tiny plan and CSV export whose KPI values are computed by hand in the tests.

Shared by the `tiny_project` fixture (tests/pipeline/conftest.py) and the tests elsewhere
that need a small real project with their own export rows (`make_tiny_project`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days
from kpi_pipeline.warehouse.engine import read_frame_once

TINY_PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
      event_columns: {form_start: form_start, form_submit: form_submit}
measures:
  - {id: starts, event: form_start}
  - {id: submits, event: form_submit}
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {id: email_news, channel: email, match: [{source: newsletter, medium: email}]}
          - id: paid_brand
            channel: paid_search
            match: [{source: google, medium: cpc, campaign: "brand_*"}]
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.01, as_of: 2026-01-01}
        target: {value: 0.03, by: 2026-12-31}
        grains: [day, week, month]
        segments: [tactic, device]
        tolerance: 0.1
        min_denominator: 50
      - id: task
        label: Form completion
        kind: task_completion_rate
        numerator: submits
        denominator: starts
        baseline: {value: 0.4, as_of: 2026-01-01}
        target: {value: 0.6, by: 2026-12-31}
        grains: [week]
      - id: vol
        label: Form submits
        kind: volume
        measure: submits
        baseline: {value: 8, as_of: 2026-01-01}
        target: {value: 20, by: 2026-12-31}
        grains: [week]
"""

HEADER = (
    "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events,"
    "form_start,form_submit"
)
# Week 2026-W02 is Monday 5 to Sunday 11 January; the 12th opens a partial week W03.
ROWS = [
    "2026-01-05,newsletter,email,jan_promo,/,desktop,100,60,10,4,2",
    "2026-01-05,google,organic,,/,mobile,900,400,9,6,3",
    "2026-01-06,google,cpc,Brand_Search,/,desktop,10,5,5,0,0",
    "2026-01-07,google,organic,,/,mobile,100,50,1,2,1",
    "2026-01-08,google,organic,,/,mobile,100,50,1,2,1",
    "2026-01-08,google,organic,,/blog,mobile,abc,50,1,2,1",  # line 8: quarantined
    "2026-01-09,google,organic,,/,mobile,100,50,1,2,1",
    "2026-01-10,google,organic,,/,mobile,100,50,1,2,1",
    "2026-01-11,google,organic,,/,mobile,100,50,1,2,1",
    "2026-01-12,newsletter,email,jan_promo,/,desktop,50,25,5,0,0",
]
FIRST_DAY = dt.date(2026, 1, 5)
LAST_DAY = dt.date(2026, 1, 12)


@dataclass
class TinyProject:
    root: Path
    plan_path: Path
    export_path: Path
    warehouse_url: str

    def run(self, first: dt.date = FIRST_DAY, last: dt.date = LAST_DAY):
        """Run the real daily job over [first, last] as one run, like `kpi-pipeline run`."""
        return run_days(self.plan_path, first, last, warehouse_url=self.warehouse_url)

    def read(self, sql: str):
        return read_frame_once(self.warehouse_url, sql, plan_id=load_plan(self.plan_path).plan_id)


def make_tiny_project(root: Path, rows: Sequence[str] = ROWS) -> TinyProject:
    """The tiny plan in `root`, with one export file of `rows` (under HEADER)."""
    plan_path = root / "plan.yaml"
    plan_path.write_text(TINY_PLAN, encoding="utf-8")
    exports = root / "exports"
    exports.mkdir()
    export_path = exports / "2026-01.csv"
    export_path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return TinyProject(
        root=root,
        plan_path=plan_path,
        export_path=export_path,
        warehouse_url=f"duckdb:///{root / 'kpi.duckdb'}",
    )
