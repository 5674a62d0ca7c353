"""Mailchimp reports into raw rows: the arithmetic, machine opens, send days, UTM values."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from conftest import MAILCHIMP_KEY, mailchimp_campaign, mailchimp_report, serve_mailchimp

from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.sources.email import extract_email, open_email_client
from kpi_pipeline.sources.email.mailchimp import report_row

TORONTO = ZoneInfo("America/Toronto")


def _source(**overrides) -> EmailSource:
    return EmailSource(id="mc", platform="mailchimp", utm_source="newsletter", **overrides)


def _report(proxy_excluded: int | None) -> dict:
    return mailchimp_report(
        "c1",
        "January Promo",
        "2026-01-05T14:00:00+00:00",
        sent=1000,
        hard=10,
        soft=30,
        unique_opens=500,
        proxy_excluded_unique_opens=proxy_excluded,
        subscriber_clicks=96,
        unsubscribed=4,
    )


def test_report_row_counts():
    row = report_row(_report(380), _source(), TORONTO, "Jan_Promo")
    assert row is not None
    assert (row["emails_sent"], row["hard_bounces"], row["soft_bounces"]) == (1000, 10, 30)
    assert row["bounces"] == 40
    assert row["delivered"] == 960  # sent - hard - soft
    # People who clicked (unique_subscriber_clicks), not unique clicks per link (103).
    assert row["unique_clicks"] == 96
    assert row["unsubscribes"] == 4
    assert row["utm_source"] == "newsletter" and row["utm_campaign"] == "Jan_Promo"


@pytest.mark.parametrize(
    ("proxy_excluded", "exclude", "opens", "machine", "excluded"),
    [
        # Flagged and excluded: 500 reported, 120 were privacy-proxy opens.
        (380, True, 380, 120, True),
        # Flagged, but the plan keeps them: the headline figure, the flag still recorded.
        (380, False, 500, 120, False),
        # An old report without the proxy fields: nothing to exclude, nothing invented.
        (None, True, 500, None, False),
    ],
)
def test_machine_opens(proxy_excluded, exclude, opens, machine, excluded):
    row = report_row(_report(proxy_excluded), _source(exclude_machine_opens=exclude), TORONTO, None)
    assert row is not None
    assert row["unique_opens"] == opens
    assert row["reported_unique_opens"] == 500
    assert row["machine_unique_opens"] == machine
    assert row["machine_opens_excluded"] is excluded


def test_unsent_report_is_skipped():
    report = {**_report(380), "send_time": ""}
    assert report_row(report, _source(), TORONTO, None) is None


def test_fetch_dates_campaigns_by_plan_day_and_reads_utm_and_list_growth(fake_api):
    reports = [
        _report(380),
        # 04:30 UTC on the 12th is 23:30 on the 11th in Toronto: it belongs to the 11th.
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
        # Another audience: left out when the plan names its lists.
        mailchimp_report(
            "c9",
            "Other audience",
            "2026-01-06T15:00:00+00:00",
            sent=10,
            hard=0,
            soft=0,
            unique_opens=1,
            proxy_excluded_unique_opens=1,
            subscriber_clicks=0,
            unsubscribed=0,
            list_id="zzz",
        ),
        # 05:30 UTC on the 12th is 00:30 on the 12th in Toronto: outside 5..11 January.
        mailchimp_report(
            "c4",
            "Too late",
            "2026-01-12T05:30:00+00:00",
            sent=10,
            hard=0,
            soft=0,
            unique_opens=1,
            proxy_excluded_unique_opens=1,
            subscriber_clicks=0,
            unsubscribed=0,
        ),
    ]
    activity = [
        {"day": f"2026-01-{d:02d}", "emails_sent": 0, "subs": d, "unsubs": 1, "other_adds": 0}
        for d in (4, 5, 11, 12)
    ]
    serve_mailchimp(
        fake_api,
        reports,
        [mailchimp_campaign("c1", "Jan_Promo"), mailchimp_campaign("c3", "")],
        {"a1b2c3d4e5": activity},
    )
    source = _source(base_url=f"{fake_api.base}/3.0", list_ids=["a1b2c3d4e5"], page_size=2)
    extract = extract_email(
        open_email_client(source, MAILCHIMP_KEY, sleep=lambda _: None),
        source,
        first_day=dt.date(2026, 1, 5),
        last_day=dt.date(2026, 1, 11),
        zone=TORONTO,
    )
    rows = extract.campaigns.set_index("campaign_id")
    assert list(rows.index) == ["c1", "c3"]
    assert rows.loc["c1", "date"] == dt.date(2026, 1, 5)
    assert rows.loc["c3", "date"] == dt.date(2026, 1, 11)
    assert rows.loc["c1", "utm_campaign"] == "Jan_Promo"
    assert pd.isna(rows.loc["c3", "utm_campaign"])  # no GA tracking: the name stands in, in SQL
    assert extract.machine_opens_excluded == 120
    # The API is asked for the plan's days in UTC: Toronto midnight is 05:00 UTC in January.
    first_call = fake_api.calls("/3.0/reports")[0]
    assert first_call.query["since_send_time"] == "2026-01-05T05:00:00+00:00"
    assert first_call.query["before_send_time"] == "2026-01-12T05:00:00+00:00"
    assert fake_api.calls("/3.0/campaigns")[0].query["status"] == "sent"
    growth = extract.list_growth
    assert list(growth["date"]) == [dt.date(2026, 1, 5), dt.date(2026, 1, 11)]
    assert list(growth["subscribes"]) == [5, 11]
    assert list(growth["unsubscribes"]) == [1, 1]
