"""Quality flags are per source (issue 10): two GA4 properties with different flags on the
same day, and an email source next to them.

Property A is sampled on Tuesday, property B thresholded on Tuesday: a KPI fed by both
carries "sampled,thresholded" for the periods holding Tuesday; a KPI fed only by the email
source (Mailchimp, served on 127.0.0.1 here) carries no flag at all. Numbers are by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from conftest import MON, TUE, WED
from fake_ga4 import FakeGa4, serve

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.warehouse.engine import read_frame_once

KEY_VAR = "KPI_TEST_FLAGS_MAILCHIMP_KEY"
JAN_1 = dt.date(2026, 1, 1)

PLAN = """\
id: flags
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  traffic_source: ga4
  ga4:
    - id: prop_a
      property_id: "111"
      credentials_env_var: TINY_GA4_CREDENTIALS
      lookback_days: 0
    - id: prop_b
      property_id: "222"
      credentials_env_var: TINY_GA4_CREDENTIALS
      lookback_days: 0
  email:
    - id: news
      platform: mailchimp
      base_url: {base}/3.0
      api_key_env_var: {key_var}
      utm_source: newsletter
      lookback_days: 0
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {{id: email_jan, channel: email, match: [{{source: newsletter, campaign: "jan_*"}}]}}
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {{value: 0.01, as_of: 2026-01-01}}
        target: {{value: 0.03, by: 2026-12-31}}
        grains: [day, week]
      - id: mo_users
        label: Monthly active users
        kind: users
        users_metric: activeUsers
        baseline: {{value: 300, as_of: 2026-01-01}}
        target: {{value: 600, by: 2026-12-31}}
        grains: [month]
      - id: sent
        label: Emails sent
        kind: volume
        measure: emails_sent
        baseline: {{value: 500, as_of: 2026-01-01}}
        target: {{value: 1000, by: 2026-12-31}}
        grains: [day]
      - id: click_rate
        label: Email click rate
        kind: ratio
        numerator: email_unique_clicks
        denominator: emails_delivered
        baseline: {{value: 0.03, as_of: 2026-01-01}}
        target: {{value: 0.06, by: 2026-12-31}}
        grains: [day, week]
"""


# -- a Mailchimp that serves two campaign reports ------------------------------------------


def _report(campaign_id: str, send_time: str, sent: int, soft: int, clickers: int) -> dict:
    return {
        "id": campaign_id,
        "campaign_title": campaign_id,
        "list_id": "l1",
        "send_time": send_time,
        "emails_sent": sent,
        "unsubscribed": 0,
        "bounces": {"hard_bounces": 0, "soft_bounces": soft, "syntax_errors": 0},
        "opens": {"unique_opens": 0},
        "clicks": {"unique_subscriber_clicks": clickers},
    }


# c1 on Tuesday 10:00 Toronto: 1000 sent, 40 bounced -> 960 delivered, 48 clickers.
# c2 on Wednesday 10:00 Toronto: 500 sent, 20 bounced -> 480 delivered, 12 clickers; its
# UTM campaign "flash_sale" matches no tactic (the only one claims "jan_*").
REPORTS = [
    _report("c1", "2026-01-06T15:00:00+00:00", 1000, 40, 48),
    _report("c2", "2026-01-07T15:00:00+00:00", 500, 20, 12),
]
CAMPAIGNS = [
    {"id": "c1", "tracking": {"google_analytics": "jan_promo"}},
    {"id": "c2", "tracking": {"google_analytics": "flash_sale"}},
]


@pytest.fixture
def mailchimp() -> Iterator[str]:
    """GET /3.0/reports and /3.0/campaigns, filtered by send time like Mailchimp."""
    times = {r["id"]: r["send_time"] for r in REPORTS}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            since = query.get("since_send_time", "")
            before = query.get("before_send_time", "9999")
            items = {
                "/3.0/reports": ("reports", REPORTS),
                "/3.0/campaigns": ("campaigns", CAMPAIGNS),
            }
            if parts.path not in items:
                self.send_response(404)
                self.end_headers()
                return
            key, rows = items[parts.path]
            kept = [r for r in rows if since <= times[r["id"]] < before]
            body = json.dumps({key: kept, "total_items": len(kept)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- two GA4 properties, one fake each, behind one endpoint ---------------------------------


@dataclass
class Properties:
    """Routes each request to the fake of the property it names (`properties/111`)."""

    fakes: dict[str, FakeGa4]

    def run_report(self, request, context):
        return self.fakes[request.property.removeprefix("properties/")].run_report(request, context)


@pytest.fixture
def flags_project(tmp_path: Path, mailchimp: str, monkeypatch):
    prop_a, prop_b = FakeGa4(), FakeGa4()
    # Property A: 100 / 200 / 100 sessions with 2 / 4 / 2 key events, sampled on Tuesday.
    for day, sessions, key_events in ((MON, 100, 2), (TUE, 200, 4), (WED, 100, 2)):
        prop_a.traffic(day, "google", "organic", "(not set)", sessions, sessions // 2, key_events)
    prop_a.sampled[TUE] = (1, 4)
    # Property B: 10 / 20 / 10 sessions with 1 key event a day, thresholded on Tuesday.
    for day, sessions in ((MON, 10), (TUE, 20), (WED, 10)):
        prop_b.traffic(day, "bing", "cpc", "brand", sessions, sessions // 2, 1)
    prop_b.thresholded.add(TUE)
    # Monthly active users, one request per property from Jan 1 (the month's start) to
    # Wednesday: A counts 300 (sampled), B 40 (sampled and thresholded). The fake flags a
    # request by its first day: Jan 1 is before history, so no daily report is flagged.
    prop_a.users[("activeUsers", JAN_1, WED)] = {"all": "300"}
    prop_a.sampled[JAN_1] = (1, 2)
    prop_b.users[("activeUsers", JAN_1, WED)] = {"all": "40"}
    prop_b.sampled[JAN_1] = (1, 2)
    prop_b.thresholded.add(JAN_1)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN.format(base=mailchimp, key_var=KEY_VAR), encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    with serve(Properties({"111": prop_a, "222": prop_b})) as target:
        monkeypatch.setenv("KPI_GA4_ENDPOINT", target)
        monkeypatch.setenv("TINY_GA4_CREDENTIALS", "/secret/place/key.json")
        monkeypatch.setenv(KEY_VAR, "0123456789abcdef0123456789abcdef-us6")
        result = run_days(plan_path, MON, WED, warehouse_url=url)
        assert result.success, step_failures(result)

    def read(sql: str) -> pd.DataFrame:
        return read_frame_once(url, sql, plan_id=load_plan(plan_path).plan_id)

    return read


def _flags(frame: pd.DataFrame) -> dict[str, str | None]:
    return {
        label: None if pd.isna(flags) else flags
        for label, flags in zip(frame["period_label"], frame["quality_flags"], strict=True)
    }


def test_each_property_logs_its_own_flags(flags_project):
    log = flags_project(
        "select distinct source_id, date, quality_flags from raw.ga4_extract_log "
        "where quality_flags is not null"
    )
    got = sorted((s, pd.Timestamp(d).date(), f) for s, d, f in log.itertuples(index=False))
    assert got == [("prop_a", TUE, "sampled"), ("prop_b", TUE, "thresholded")]


def test_a_kpi_fed_by_both_properties_carries_both_flags(flags_project):
    scores = flags_project(
        "select grain, period_label, numerator, denominator, quality_flags "
        "from marts.kpi_scores where kpi_id = 'conv' and segment_type = 'all'"
    )
    assert _flags(scores) == {
        "2026-01-05": None,
        "2026-01-06": "sampled,thresholded",  # A's sampling and B's thresholding, as a set
        "2026-01-07": None,
        "2026-W02": "sampled,thresholded",  # the week holds Tuesday
    }
    # The rate sums both properties: Tuesday (4 + 1) / (200 + 20); the week (Mon..Wed)
    # (2 + 4 + 2 + 3 x 1) = 11 over (100 + 200 + 100 + 10 + 20 + 10) = 440.
    rows = scores.set_index("period_label")
    assert tuple(rows.loc["2026-01-06", ["numerator", "denominator"]]) == (5.0, 220.0)
    assert tuple(rows.loc["2026-W02", ["numerator", "denominator"]]) == (11.0, 440.0)


def test_an_email_kpi_is_not_flagged_by_a_ga4_property(flags_project):
    scores = flags_project(
        "select kpi_id, period_label, numerator, denominator, value, status, quality_flags "
        "from marts.kpi_scores where kpi_id in ('sent', 'click_rate') and segment_type = 'all'"
    )
    assert scores["quality_flags"].isna().all(), scores
    sent = scores[scores.kpi_id == "sent"].set_index("period_label")
    # Every day of the run is covered by the email window re-read: Monday had no campaign
    # (a real 0), Tuesday c1 (1000 sent), Wednesday c2 (500).
    assert sent["value"].to_dict() == {"2026-01-05": 0.0, "2026-01-06": 1000.0, "2026-01-07": 500.0}
    clicks = scores[scores.kpi_id == "click_rate"].set_index("period_label")
    # Week: (48 + 12) clickers over (960 + 480) delivered = 60 / 1440.
    week = clicks.loc["2026-W02"]
    assert (week.numerator, week.denominator) == (60.0, 1440.0)
    # Monday: covered, nothing sent: denominator 0 and no value (insufficient data).
    monday = clicks.loc["2026-01-05"]
    assert (monday.numerator, monday.denominator) == (0.0, 0.0) and pd.isna(monday.value)
    assert monday.status == "insufficient_data"


def test_unmapped_traffic_counts_an_unclaimed_email_campaign(flags_project):
    unmapped = flags_project(
        "select * from marts.unmapped_traffic where medium = 'email'"
    ).set_index(["source", "medium", "campaign"])
    # c2 (newsletter / email / flash_sale) matches no tactic: its email counts are listed,
    # and no site session came from it (sessions NULL). c1 (jan_promo) is claimed.
    assert list(unmapped.index) == [("newsletter", "email", "flash_sale")]
    row = unmapped.iloc[0]
    assert (row.emails_sent, row.emails_delivered, row.email_unique_clicks) == (500, 480, 12)
    assert pd.isna(row.sessions) and pd.isna(row.key_events)
    assert pd.Timestamp(row.first_seen).date() == pd.Timestamp(row.last_seen).date() == WED


def test_a_users_kpi_unions_its_properties_flags(flags_project):
    raw = flags_project(
        "select source_id, users, quality_flags from raw.ga4_period_users order by source_id"
    )
    assert [tuple(r) for r in raw.itertuples(index=False)] == [
        ("prop_a", 300, "sampled"),
        ("prop_b", 40, "sampled,thresholded"),
    ]
    # Users are summed across properties (300 + 40), and the flags are the set of both
    # properties' flags: {sampled} | {sampled, thresholded} = "sampled,thresholded" -- in
    # kpi_scores and in kpi_values alike (definition 7: sorted, each flag once).
    for table in ("kpi_scores", "kpi_values"):
        row = flags_project(
            f"select value, quality_flags from marts.{table} where kpi_id = 'mo_users'"
        )
        assert [tuple(r) for r in row.itertuples(index=False)] == [
            (340.0, "sampled,thresholded")
        ], table
