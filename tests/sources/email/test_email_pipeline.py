"""The real daily job on a CSV export plus a Mailchimp account served on 127.0.0.1.

Email KPIs (open and click rates) land in `marts.kpi_values` next to the site conversion
rate of the same tactic, and the site conversions that email drove (UTM medium email) join
the email platform's figures through that tactic. Every expectation is computed by hand.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from conftest import MAILCHIMP_KEY, mailchimp_campaign, mailchimp_report, serve_mailchimp

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.defs.sources.email_assets import MailchimpResource
from kpi_pipeline.runs import run_days
from kpi_pipeline.warehouse.engine import read_frame_once

KEY_VAR = "KPI_TEST_MAILCHIMP_KEY"

PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
  email:
    - id: news
      platform: mailchimp
      base_url: {base}/3.0
      api_key_env_var: {key_var}
      utm_source: newsletter
      list_ids: [a1b2c3d4e5]
      exclude_machine_opens: {exclude}
      page_size: 2
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
          - {{id: paid_brand, channel: paid_search, match: [{{source: google, medium: cpc}}]}}
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {{value: 0.01, as_of: 2026-01-01}}
        target: {{value: 0.03, by: 2026-12-31}}
        grains: [week]
        segments: [tactic]
      - id: open_rate
        label: Email open rate
        kind: ratio
        numerator: email_unique_opens
        denominator: emails_delivered
        baseline: {{value: 0.3, as_of: 2026-01-01}}
        target: {{value: 0.4, by: 2026-12-31}}
        grains: [week]
        segments: [tactic]
      - id: click_rate
        label: Email click rate
        kind: ratio
        numerator: email_unique_clicks
        denominator: emails_delivered
        baseline: {{value: 0.05, as_of: 2026-01-01}}
        target: {{value: 0.1, by: 2026-12-31}}
        grains: [week]
        segments: [tactic]
      - id: email_conversions
        label: Site conversions per delivered email
        kind: ratio
        numerator: key_events
        denominator: emails_delivered
        tactics: [email_news]
        baseline: {{value: 0.005, as_of: 2026-01-01}}
        target: {{value: 0.01, by: 2026-12-31}}
        grains: [week]
"""

# The export has rows on every day of week 2026-W02 (Monday 5 to Sunday 11), so it covers
# the whole week however file coverage is counted (days with rows, or days the file spans):
# a KPI mixing it with the email platform is judged on all seven days.
EXPORT = """\
date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events
2026-01-05,newsletter,email,jan_promo,/,desktop,100,60,10
2026-01-06,newsletter,email,jan_promo,/,mobile,50,20,2
2026-01-05,google,organic,,/,mobile,900,400,9
2026-01-07,google,cpc,brand_search,/,desktop,10,5,5
2026-01-08,google,organic,,/,mobile,100,40,1
2026-01-09,google,organic,,/,mobile,100,40,1
2026-01-10,google,organic,,/,mobile,100,40,1
2026-01-11,google,organic,,/,mobile,100,40,1
"""

# Campaign c1: 1000 sent, 40 bounced -> 960 delivered; 500 unique opens, 120 by privacy
# proxies -> 380. Campaign c2: 500 sent, 20 bounced -> 480; 300 opens, 80 proxy -> 220.
# Campaign c3 (sent 23:30 Toronto on Sunday 11th, the 12th in UTC): 200 delivered, 50 opens,
# no proxy flag. Week 2026-W02 totals: 1640 delivered, 650 opens (810 with proxy opens),
# 96 + 48 + 10 = 154 clickers. Campaign c4 is sent on the 13th, after the run's days.
REPORTS = [
    mailchimp_report(
        "c1",
        "January Promo",
        "2026-01-05T14:00:00+00:00",
        sent=1000,
        hard=10,
        soft=30,
        unique_opens=500,
        proxy_excluded_unique_opens=380,
        subscriber_clicks=96,
        unsubscribed=4,
    ),
    mailchimp_report(
        "c2",
        "January Promo (resend)",
        "2026-01-08T15:00:00+00:00",
        sent=500,
        hard=5,
        soft=15,
        unique_opens=300,
        proxy_excluded_unique_opens=220,
        subscriber_clicks=48,
        unsubscribed=1,
    ),
    mailchimp_report(
        "c3",
        "Weekend Deals",
        "2026-01-12T04:30:00+00:00",
        sent=200,
        hard=0,
        soft=0,
        unique_opens=50,
        proxy_excluded_unique_opens=None,
        subscriber_clicks=10,
        unsubscribed=0,
    ),
    mailchimp_report(
        "c4",
        "Later",
        "2026-01-13T15:00:00+00:00",
        sent=999,
        hard=0,
        soft=0,
        unique_opens=999,
        proxy_excluded_unique_opens=999,
        subscriber_clicks=999,
        unsubscribed=0,
    ),
]
CAMPAIGNS = [
    mailchimp_campaign("c1", "Jan_Promo"),  # utm_campaign as typed in Mailchimp: lower-cased
    mailchimp_campaign("c2", "jan_promo"),
    mailchimp_campaign("c3", ""),  # no GA tracking: the campaign name stands in
    mailchimp_campaign("c4", "later"),
]
ACTIVITY = [
    {"day": f"2026-01-{d:02d}", "emails_sent": 0, "subs": d, "unsubs": 1, "other_adds": 0}
    for d in range(1, 14)
]


def _run(
    tmp_path: Path,
    fake_api,
    exclude: bool = True,
    first: str = "2026-01-05",
    last: str = "2026-01-11",
):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        PLAN.format(base=fake_api.base, key_var=KEY_VAR, exclude=str(exclude).lower()),
        encoding="utf-8",
    )
    (tmp_path / "exports").mkdir(exist_ok=True)
    (tmp_path / "exports" / "2026-01.csv").write_text(EXPORT, encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    result = run_days(
        plan_path, dt.date.fromisoformat(first), dt.date.fromisoformat(last), warehouse_url=url
    )
    return result, url


def _read(url: str, sql: str) -> pd.DataFrame:
    return read_frame_once(url, sql, plan_id="plan")


def _week(values: pd.DataFrame, kpi_id: str, segment: str) -> pd.Series:
    rows = values[
        (values.kpi_id == kpi_id)
        & (values.grain == "week")
        & (values.period_label == "2026-W02")
        & (values.segment == segment)
    ]
    assert len(rows) == 1, f"{kpi_id}/{segment}: {len(rows)} rows"
    return rows.iloc[0]


def _step_ok(result, step: str) -> None:
    failures = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    assert not failures, failures[0].event_specific_data.error.message if failures else ""


@pytest.fixture
def served(fake_api, monkeypatch):
    monkeypatch.setenv(KEY_VAR, MAILCHIMP_KEY)
    # Copies: a test may change a report to play opens arriving after the send.
    serve_mailchimp(fake_api, copy.deepcopy(REPORTS), CAMPAIGNS, {"a1b2c3d4e5": ACTIVITY})
    # One rate limit in the real run: Retry-After 0 keeps the test fast, the path is the same.
    fake_api.fail_next("GET", "/3.0/reports", (429, {"Retry-After": "0"}, {}))
    return fake_api


def test_email_kpis_sit_next_to_site_kpis_of_the_same_tactic(tmp_path, served):
    result, url = _run(tmp_path, served)
    for step in ("email_platforms", "csv_exports", "publish_marts"):
        _step_ok(result, step)
    values = _read(url, "select * from marts.kpi_values where segment_type = 'tactic'")

    conv = _week(values, "conv", "email_news")
    assert (conv.numerator, conv.denominator) == (12.0, 150.0)  # site: 10 + 2 of 100 + 50
    opens = _week(values, "open_rate", "email_news")
    assert (opens.numerator, opens.denominator) == (650.0, 1640.0)
    assert opens.value == pytest.approx(650 / 1640)
    clicks = _week(values, "click_rate", "email_news")
    assert (clicks.numerator, clicks.denominator) == (154.0, 1640.0)
    assert clicks.value == pytest.approx(154 / 1640)
    # Only email_news has email figures: no open rate for paid search or unattributed traffic.
    assert set(values[values.kpi_id == "open_rate"].segment) == {"email_news"}
    assert set(values[values.kpi_id == "conv"].segment) == {
        "email_news",
        "paid_brand",
        "unattributed",
    }

    # Site conversions from UTM medium email over the platform's delivered emails, joined by
    # tactic: 12 key events on the site / 1640 emails delivered (c1 on the 5th, c2 on the 8th,
    # c3 on the 11th). Both sources, the export and the platform, covered all 7 days of W02
    # (the organic traffic of the 8th..11th is not email's: it adds no key event here).
    everything = _read(url, "select * from marts.kpi_values where kpi_id = 'email_conversions'")
    driven = _week(everything, "email_conversions", "all")
    assert (driven.numerator, driven.denominator) == (12.0, 1640.0)
    assert driven.value == pytest.approx(12 / 1640)
    assert (driven.covered_from, driven.covered_to, driven.days_covered) == (
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 11),
        7,
    )
    assert not driven.is_partial


def test_raw_rows_record_the_machine_open_exclusion_and_list_growth(tmp_path, served):
    result, url = _run(tmp_path, served)
    _step_ok(result, "email_platforms")
    raw = _read(url, "select * from raw.email_campaigns order by campaign_id")
    assert list(raw.campaign_id) == ["c1", "c2", "c3"]  # c4 is sent after the run's days
    assert list(raw.date) == [dt.date(2026, 1, 5), dt.date(2026, 1, 8), dt.date(2026, 1, 11)]
    assert list(raw.machine_opens_excluded) == [True, True, False]
    assert list(raw.machine_unique_opens.astype("Int64")) == [120, 80, pd.NA]
    assert list(raw.reported_unique_opens) == [500, 300, 50]
    measures = _read(
        url,
        "select campaign, source, medium, device, sum(value) as value "
        "from intermediate.int_email__measures where measure_id = 'email_unique_opens' "
        "group by 1, 2, 3, 4 order by 1",
    )
    assert measures.to_dict("records") == [
        {
            "campaign": "jan_promo",
            "source": "newsletter",
            "medium": "email",
            "device": "(not set)",
            "value": 600.0,
        },
        {
            "campaign": "weekend deals",
            "source": "newsletter",
            "medium": "email",
            "device": "(not set)",
            "value": 50.0,
        },
    ]
    growth = _read(url, "select * from raw.email_list_growth order by date")
    assert list(growth.date) == [dt.date(2026, 1, d) for d in range(5, 12)]
    assert list(growth.subscribes) == list(range(5, 12))
    # The exclusion is in the run's metadata too, so the UI shows how opens were counted.
    # One materialization per partition of the range, all with the run's metadata.
    materializations = [
        m
        for m in result.asset_materializations_for_node("email_platforms")
        if m.asset_key.path == ["raw", "email_campaigns"]
    ]
    assert {m.partition for m in materializations} == {f"2026-01-{d:02d}" for d in range(5, 12)}
    metadata = {k: v.value for k, v in materializations[0].metadata.items()}
    assert metadata["news/machine_unique_opens_excluded"] == 200
    assert metadata["news/open_counting"].startswith("machine opens excluded")
    assert metadata["news/retries"] == 1  # the 429


def test_machine_opens_can_be_kept(tmp_path, served):
    result, url = _run(tmp_path, served, exclude=False)
    _step_ok(result, "publish_marts")
    values = _read(url, "select * from marts.kpi_values where segment_type = 'tactic'")
    opens = _week(values, "open_rate", "email_news")
    assert (opens.numerator, opens.denominator) == (850.0, 1640.0)  # 500 + 300 + 50


def test_later_runs_reread_recent_campaigns_and_a_refused_key_keeps_the_rows(tmp_path, served):
    first, url = _run(tmp_path, served)
    _step_ok(first, "email_platforms")

    # Next day's run (the 12th only): c1's opens went on arriving. The 7-day look-back
    # re-reads campaigns sent since the 5th and replaces their rows: updated, not doubled.
    (c1,) = [r for r in served.data["reports"] if r["id"] == "c1"]
    c1["opens"] |= {"unique_opens": 600, "proxy_excluded_unique_opens": 450}
    second, _ = _run(tmp_path, served, first="2026-01-12", last="2026-01-12")
    _step_ok(second, "email_platforms")
    assert served.calls("/3.0/reports")[-1].query["since_send_time"] == (
        "2026-01-05T05:00:00+00:00"
    )
    rows = _read(url, "select campaign_id, unique_opens from raw.email_campaigns order by 1")
    assert rows.to_dict("list") == {
        "campaign_id": ["c1", "c2", "c3"],
        "unique_opens": [450, 220, 50],
    }

    # A refused key: the step fails at once, clearly, without the key; nothing is written.
    calls_before = len(served.calls("/3.0/campaigns"))
    served.fail_next(
        "GET", "/3.0/campaigns", (401, {}, {"title": "API Key Invalid", "detail": "bad key"})
    )
    third, _ = _run(tmp_path, served, first="2026-01-12", last="2026-01-12")
    failures = [
        e for e in third.all_events if e.is_step_failure and e.step_key == "email_platforms"
    ]
    assert len(failures) == 1
    message = failures[0].event_specific_data.error.message
    assert "'news' (mailchimp, key from $KPI_TEST_MAILCHIMP_KEY)" in message
    assert "HTTP 401" in message and "API Key Invalid" in message
    assert MAILCHIMP_KEY not in message
    assert len(served.calls("/3.0/campaigns")) == calls_before + 1  # never retried
    kept = _read(url, "select campaign_id, unique_opens from raw.email_campaigns order by 1")
    assert kept.to_dict("list") == rows.to_dict("list")


def test_the_api_key_reaches_dagster_as_an_env_var(tmp_path, fake_api, monkeypatch):
    # The UI shows the variable's name, never the key; the resource exists only when declared.
    monkeypatch.setenv(KEY_VAR, MAILCHIMP_KEY)
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        PLAN.format(base=fake_api.base, key_var=KEY_VAR, exclude="true"), encoding="utf-8"
    )
    defs = build_definitions(plan_path, warehouse_url=f"duckdb:///{tmp_path / 'kpi.duckdb'}")
    resource = defs.resources["email_news"]
    assert isinstance(resource, MailchimpResource)
    assert isinstance(resource.api_key, dg.EnvVar)
    assert resource.api_key.env_var_name == KEY_VAR
    assert MAILCHIMP_KEY not in repr(resource)
    demo = build_definitions(
        Path(__file__).resolve().parents[3] / "plan_config" / "demo.yaml",
        warehouse_url="duckdb:///:memory:",
    )
    assert not [key for key in demo.resources if key.startswith("email_")]
