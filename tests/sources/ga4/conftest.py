"""Fixtures: a fake GA4 server on loopback, the real client pointed at it, a GA4 plan project."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_ga4 import FakeGa4, serve

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days
from kpi_pipeline.sources.ga4.client import open_client
from kpi_pipeline.warehouse.engine import read_frame_once

# Week 2026-W02 runs Monday 5 to Sunday 11 January.
MON, TUE, WED, THU = (dt.date(2026, 1, 5) + dt.timedelta(days=n) for n in range(4))

GA4_PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  traffic_source: ga4
  ga4:
    - id: site
      property_id: "123456"
      credentials_env_var: TINY_GA4_CREDENTIALS
      lookback_days: {lookback}
      page_size: 2
  csv_exports:
    # Declared but not chosen: its sessions must not be added to GA4's.
    - id: old_export
      path: exports/*.csv
      event_columns: {{form_start: form_start, form_submit: form_submit}}
measures:
  - {{id: starts, event: form_start}}
  - {{id: submits, event: form_submit}}
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {{id: email_news, channel: email, match: [{{source: newsletter, medium: email}}]}}
          - id: paid_brand
            channel: paid_search
            match: [{{source: google, medium: cpc, campaign: "brand_*"}}]
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {{value: 0.01, as_of: 2026-01-01}}
        target: {{value: 0.03, by: 2026-12-31}}
        grains: [day, week]
        segments: [tactic]
      - id: eng
        label: Engagement rate
        kind: engagement_rate
        baseline: {{value: 0.4, as_of: 2026-01-01}}
        target: {{value: 0.6, by: 2026-12-31}}
        grains: [week]
      - id: task
        label: Form completion
        kind: task_completion_rate
        numerator: submits
        denominator: starts
        baseline: {{value: 0.4, as_of: 2026-01-01}}
        target: {{value: 0.6, by: 2026-12-31}}
        grains: [week]
"""

CSV_EXPORT = (
    "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events,"
    "form_start,form_submit\n"
    "2026-01-05,newsletter,email,jan_promo,/,desktop,5000,4000,900,40,30\n"
)


@pytest.fixture
def fake() -> FakeGa4:
    return FakeGa4()


@pytest.fixture
def ga4_target(fake: FakeGa4) -> Iterator[str]:
    with serve(fake) as target:
        yield target


@pytest.fixture
def ga4_client(ga4_target: str):
    """The production `BetaAnalyticsDataClient` (gRPC transport), talking to the fake."""
    with open_client(credentials_file=None, endpoint=ga4_target) as client:
        yield client


def fill_tiny_week(fake: FakeGa4) -> None:
    """Three days whose KPIs the tests compute by hand (metric strings as GA4 sends them)."""
    fake.traffic(MON, "newsletter", "email", "jan_promo", "100", "60", "10.0")
    fake.traffic(MON, "google", "organic", "(not set)", "900.0", "400", "9", device="mobile")
    fake.traffic(TUE, "google", "cpc", "Brand_Search", "10", "5", "5")
    fake.traffic(WED, "google", "organic", "(not set)", "100", "50", "1", device="mobile")
    fake.event(MON, "form_start", "newsletter", "email", "jan_promo", "4")
    fake.event(MON, "form_submit", "newsletter", "email", "jan_promo", "2.0")
    fake.event(TUE, "form_start", "google", "cpc", "Brand_Search", "6")
    fake.event(TUE, "form_submit", "google", "cpc", "Brand_Search", "3")
    fake.event(TUE, "page_view", "google", "cpc", "Brand_Search", "1000")  # no measure


@dataclass
class Ga4Project:
    root: Path
    plan_path: Path
    warehouse_url: str
    fake: FakeGa4

    def run(self, first: dt.date, last: dt.date, instance=None, **tags: str):
        """The real daily job over [first, last] as one run, like `kpi-pipeline run`."""
        return run_days(
            self.plan_path,
            first,
            last,
            warehouse_url=self.warehouse_url,
            instance=instance,
            tags=tags,
        )

    def read(self, sql: str):
        return read_frame_once(self.warehouse_url, sql, plan_id=load_plan(self.plan_path).plan_id)


@pytest.fixture
def ga4_project(tmp_path: Path, fake: FakeGa4, ga4_target: str, monkeypatch) -> Ga4Project:
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(GA4_PLAN.format(lookback=3), encoding="utf-8")
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "2026-01.csv").write_text(CSV_EXPORT, encoding="utf-8")
    monkeypatch.setenv("KPI_GA4_ENDPOINT", ga4_target)
    # Production reads the key file named here; the loopback fake needs none.
    monkeypatch.setenv("TINY_GA4_CREDENTIALS", "/secret/place/key.json")
    return Ga4Project(tmp_path, plan_path, f"duckdb:///{tmp_path / 'kpi.duckdb'}", fake)
