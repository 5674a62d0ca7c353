"""Small projects for the data-check tests, and readers of what a run's checks decided.

The plan is the tiny plan of `tests/pipeline/conftest.py` with an explicit `id:` and dates
relative to today (in the plan's timezone), so that a clean history ending yesterday is fresh
and the freshness check holds for real, not because its lag was stretched. Every run goes
through `run_days` (the real Dagster job); every read through the plan's own schemas.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.runs import run_days
from kpi_pipeline.warehouse.engine import Warehouse, read_frame_once

TIMEZONE = "America/Toronto"
TODAY = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
# The last Sunday before today closes the last complete ISO week (Monday to Sunday).
SUNDAY = TODAY - dt.timedelta(days=TODAY.isoweekday() % 7 or 7)
WEEK_START = SUNDAY - dt.timedelta(days=6)
# Five weeks of history before that Sunday: a day of the closed week has 28 days behind it
# (the volume check's default trailing window; it judges a day from 14 days of history).
HISTORY_START = SUNDAY - dt.timedelta(days=34)
DEADLINE = TODAY + dt.timedelta(days=365)

HEADER = (
    "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events,"
    "form_start,form_submit"
)
# A steady day: 120 sessions, 3 key events, 3 form starts and 2 submits.
GOOGLE = "{day},google,organic,,/,mobile,100,50,1,2,1"
NEWSLETTER = "{day},newsletter,email,news,/,desktop,20,10,2,1,1"

CSV_SOURCES = """\
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
      event_columns: {form_start: form_start, form_submit: form_submit}
"""

GA4_SOURCES = """\
sources:
  ga4:
    - id: site
      property_id: "123456"
      credentials_env_var: CHECKS_GA4_CREDENTIALS
      lookback_days: 0
"""

_PLAN = """\
id: {plan_id}
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: {history_start}
{quality}{sources}measures:
  - {{id: starts, event: form_start}}
  - {{id: submits, event: form_submit}}
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: {deadline}
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {{id: email_news, channel: email, match: [{{source: newsletter, medium: email}}]}}
    kpis:
{kpis}"""

CSV_KPIS = """\
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {{value: 0.01, as_of: {history_start}}}
        target: {{value: 0.03, by: {deadline}}}
        grains: [day, week]
        segments: [device]
      - id: task
        label: Form completion
        kind: task_completion_rate
        numerator: submits
        denominator: starts
        baseline: {{value: 0.4, as_of: {history_start}}}
        target: {{value: 0.6, by: {deadline}}}
        grains: [week]
"""

GA4_KPIS = """\
      - id: eng
        label: Engagement rate
        kind: engagement_rate
        baseline: {{value: 0.4, as_of: {history_start}}}
        target: {{value: 0.6, by: {deadline}}}
        grains: [day]
"""


def plan_text(
    plan_id: str = "chk",
    *,
    history_start: dt.date = HISTORY_START,
    quality: str | None = None,
    sources: str = CSV_SOURCES,
    kpis: str = CSV_KPIS,
) -> str:
    """The tiny plan, dated from `history_start` to a deadline a year from today."""
    dates = {"history_start": history_start.isoformat(), "deadline": DEADLINE.isoformat()}
    return _PLAN.format(
        plan_id=plan_id,
        quality=f"quality: {quality}\n" if quality else "",
        sources=sources,
        kpis=kpis.format(**dates),
        **dates,
    )


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def steady_rows(
    first: dt.date = HISTORY_START,
    last: dt.date = YESTERDAY,
    *,
    instead: dict[dt.date, list[str]] | None = None,
    extra: dict[dt.date, list[str]] | None = None,
) -> list[str]:
    """Two rows a day (google 100 sessions, newsletter 20), unless `instead` gives a day's
    rows; `extra` rows are added to a day's."""
    instead, extra = instead or {}, extra or {}
    rows = []
    for day in days(first, last):
        template = instead.get(day, [GOOGLE, NEWSLETTER])
        rows.extend(row.format(day=day.isoformat()) for row in [*template, *extra.get(day, [])])
    return rows


@dataclass
class Project:
    """One plan file in `root`, its CSV export, run against the warehouse at `url`."""

    root: Path
    url: str
    plan_id: str = "chk"

    @property
    def plan_path(self) -> Path:
        return (self.root / "plan.yaml").resolve()

    def write_plan(self, text: str | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.plan_path.write_text(text or plan_text(self.plan_id), encoding="utf-8")
        return self.plan_path

    def write_export(self, rows: list[str]) -> Path:
        path = self.root / "exports" / "traffic.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
        return path

    def run(
        self, first: dt.date, last: dt.date, tags: dict[str, str] | None = None
    ) -> dg.ExecuteInProcessResult:
        return run_days(self.plan_path, first, last, warehouse_url=self.url, tags=tags)

    def definitions(self) -> dg.Definitions:
        return build_definitions(self.plan_path, warehouse_url=self.url)

    def read(self, sql: str, params: dict[str, object] | None = None) -> pd.DataFrame:
        return read_frame_once(self.url, sql, params, plan_id=self.plan_id)

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """The plan's warehouse, closed afterwards (DuckDB: never hold the file)."""
        wh = Warehouse.from_url(self.url, self.plan_id)
        try:
            yield wh
        finally:
            wh.dispose()

    def execute(self, sql: str, params: dict[str, object] | None = None) -> int:
        """One statement written with declared schemas (`raw.csv_traffic`), committed."""
        with self.warehouse() as wh, wh.transaction() as conn:
            return conn.execute(sa.text(wh.plan_sql(sql)), params or {}).rowcount

    def check_results(self, run_id: str) -> pd.DataFrame:
        return self.read(
            "select asset, check_name, severity, passed, observed_value, failing_rows, "
            "checked_rows, description, sample_json from marts.check_results "
            "where run_id = :run_id order by asset, check_name",
            {"run_id": run_id},
        )

    def check_flags(self) -> set[tuple[str, dt.date, str, str, str, str]]:
        frame = self.read("select * from raw.check_flags")
        return {
            (r.source_id, _date(r.date), r.asset, r.check_name, r.severity, r.run_id)
            for r in frame.itertuples()
        }

    def flags_of(self, table: str, column: str, kpi_id: str = "conv") -> dict:
        """{(grain, period_start): value} of `column` for the KPI's `all` rows where set."""
        frame = self.read(
            f"select grain, period_start, {column} as v from marts.{table} "
            "where kpi_id = :kpi and segment_type = 'all' and segment = 'all' "
            f"and {column} is not null",
            {"kpi": kpi_id},
        )
        return {(r.grain, _date(r.period_start)): r.v for r in frame.itertuples()}


def _date(value: object) -> dt.date:
    return pd.Timestamp(value).date()


def sample_of(results: pd.DataFrame, asset: str, check: str) -> list[dict]:
    """The offending rows a check recorded in `marts.check_results` (JSON, dates as ISO)."""
    row = results[(results["asset"] == asset) & (results["check_name"] == check)]
    assert len(row) == 1, row
    return json.loads(row["sample_json"].iloc[0])


# -- what a run's checks decided ------------------------------------------------------------


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    """(asset, check) -> its ASSET_CHECK_EVALUATION in the run (each evaluated once)."""
    found: dict[tuple[str, str], object] = {}
    for evaluation in result.get_asset_check_evaluations():
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
        assert key not in found, f"{key} evaluated twice in one run"
        found[key] = evaluation
    return found


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], str]:
    """(asset, check) -> severity ('warn' or 'error') of every check that failed."""
    return {
        key: evaluation.severity.value.lower()  # type: ignore[attr-defined]
        for key, evaluation in evaluations(result).items()
        if not evaluation.passed  # type: ignore[attr-defined]
    }


def metadata(evaluation: object) -> dict[str, object]:
    return {key: value.value for key, value in evaluation.metadata.items()}  # type: ignore[attr-defined]


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def all_assets(defs: dg.Definitions) -> set[str]:
    return {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}


def declared_checks(defs: dg.Definitions) -> set[tuple[str, str]]:
    return {
        (key.asset_key.to_user_string(), key.name)
        for key in defs.resolve_asset_graph().asset_check_keys
    }


def blocked_by(defs: dg.Definitions, asset: str) -> set[str]:
    """What a blocking check failing on `asset` stops: everything downstream of the assets
    its step materializes (the step fails after writing them, so they are not blocked)."""
    graph = defs.resolve_asset_graph()
    step = set(graph.get(dg.AssetKey(asset.split("/"))).execution_set_asset_keys)
    seen: set[dg.AssetKey] = set()
    todo = [child for key in step for child in graph.get(key).child_keys]
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(graph.get(key).child_keys)
    return {key.to_user_string() for key in seen - step}


# -- the fake GA4 server of tests/sources/ga4 ----------------------------------------------


def fake_ga4_module():
    """`tests/sources/ga4/fake_ga4.py`, loaded by path under a name of its own."""
    name = "checks_fake_ga4"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "sources" / "ga4" / "fake_ga4.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
