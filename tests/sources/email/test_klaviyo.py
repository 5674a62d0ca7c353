"""Klaviyo campaigns and campaign values reports into raw rows, against a local server."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from conftest import KLAVIYO_KEY, serve_klaviyo
from pydantic import ValidationError

from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.sources.email import EmailAuthError, extract_email, open_email_client
from kpi_pipeline.sources.email.klaviyo import REVISION

TORONTO = ZoneInfo("America/Toronto")


def _campaign(campaign_id: str, name: str, send_time: str | None, utm: list[dict]) -> dict:
    return {
        "type": "campaign",
        "id": campaign_id,
        "attributes": {
            "name": name,
            "status": "Sent" if send_time else "Draft",
            "archived": False,
            "send_time": send_time,
            "tracking_options": {
                "add_tracking_params": True,
                "utm_params": utm,
                "is_tracking_clicks": True,
                "is_tracking_opens": True,
            },
        },
    }


def _result(campaign_id: str, message_id: str, **statistics) -> dict:
    return {
        "groupings": {
            "send_channel": "email",
            "campaign_id": campaign_id,
            "campaign_message_id": message_id,
        },
        "statistics": statistics,
    }


def _source(base: str) -> EmailSource:
    return EmailSource(
        id="kl", platform="klaviyo", base_url=f"{base}/api", conversion_metric_id="RESQ6t"
    )


def test_fetch_sums_messages_per_campaign_and_reads_static_utm(fake_api):
    campaigns = [
        _campaign(
            "01K1",
            "Winter Sale",
            "2026-01-06T16:00:00+00:00",
            [
                {"name": "utm_source", "value": "klaviyo_news"},
                {"name": "utm_campaign", "value": "Winter_Sale"},
            ],
        ),
        # A dynamic utm_campaign is only known per link: the campaign name stands in.
        _campaign(
            "01K2",
            "Boots",
            "2026-01-07T16:00:00+00:00",
            [{"name": "utm_campaign", "value": "{{ campaign.name }}"}],
        ),
        _campaign("01K3", "Draft", None, []),  # never sent: not a row
        _campaign("01K4", "Old", "2025-12-01T16:00:00+00:00", []),  # outside the window
    ]
    stats = {"recipients": 600, "bounced": 6, "opens_unique": 300, "clicks_unique": 30}
    results = [
        # Winter Sale went out as two messages (A/B): their figures add up.
        _result("01K1", "m1", **stats, unsubscribe_uniques=2),
        _result("01K1", "m2", **stats, unsubscribe_uniques=1),
        _result(
            "01K2",
            "m3",
            recipients=100,
            bounced=0,
            opens_unique=20,
            clicks_unique=4,
            unsubscribe_uniques=0,
        ),
    ]
    serve_klaviyo(fake_api, campaigns, results, page_size=2)
    source = _source(fake_api.base)
    extract = extract_email(
        open_email_client(source, KLAVIYO_KEY, sleep=lambda _: None),
        source,
        first_day=dt.date(2026, 1, 5),
        last_day=dt.date(2026, 1, 11),
        zone=TORONTO,
        extracted_at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC),
    )
    rows = extract.campaigns.set_index("campaign_id")
    assert list(rows.index) == ["01K1", "01K2"]
    winter = rows.loc["01K1"]
    assert (winter["emails_sent"], winter["bounces"], winter["delivered"]) == (1200, 12, 1188)
    assert (winter["unique_opens"], winter["unique_clicks"], winter["unsubscribes"]) == (
        600,
        60,
        3,
    )
    assert (winter["utm_source"], winter["utm_campaign"]) == ("klaviyo_news", "Winter_Sale")
    assert pd.isna(rows.loc["01K2", "utm_campaign"])
    assert pd.isna(rows.loc["01K2", "utm_source"])  # the platform name stands in, in SQL
    # Klaviyo flags no privacy opens per campaign: recorded as not excluded, nothing invented.
    assert not rows["machine_opens_excluded"].any()
    assert rows["machine_unique_opens"].isna().all()
    # Both collections were followed through links.next (2 pages each).
    assert len(fake_api.calls("/api/campaigns")) == 2
    posts = fake_api.calls("/api/campaign-values-reports")
    assert len(posts) == 2 and posts[0].body == posts[1].body
    attributes = posts[0].body["data"]["attributes"]
    assert attributes["conversion_metric_id"] == "RESQ6t"
    assert "contains-any(campaign_id,['01K1','01K2'])" in attributes["filter"]
    assert attributes["timeframe"] == {
        "start": "2026-01-05T05:00:00+00:00",
        "end": "2026-01-20T00:00:00+00:00",
    }
    headers = posts[0].headers
    assert headers["authorization"] == f"Klaviyo-API-Key {KLAVIYO_KEY}"
    assert headers["revision"] == REVISION


def test_klaviyo_401_is_not_retried_and_hides_the_key(fake_api):
    fake_api.fail_next(
        "GET",
        "/api/campaigns",
        (
            401,
            {},
            {"errors": [{"status": 401, "title": "Incorrect authentication credentials."}]},
        ),
    )
    source = _source(fake_api.base)
    sleeps: list[float] = []
    with pytest.raises(EmailAuthError, match="Incorrect authentication credentials") as caught:
        extract_email(
            open_email_client(source, KLAVIYO_KEY, sleep=sleeps.append),
            source,
            first_day=dt.date(2026, 1, 5),
            last_day=dt.date(2026, 1, 11),
            zone=TORONTO,
        )
    assert KLAVIYO_KEY not in str(caught.value)
    assert len(fake_api.calls("/api/campaigns")) == 1 and sleeps == []


def test_klaviyo_source_needs_a_conversion_metric():
    with pytest.raises(ValidationError, match="conversion_metric_id"):
        EmailSource(id="kl", platform="klaviyo")


def test_defaults_point_at_the_real_hosts_and_standard_variables():
    mailchimp = EmailSource(id="mc", platform="mailchimp")
    klaviyo = EmailSource(id="kl", platform="klaviyo", conversion_metric_id="X")
    assert mailchimp.base_url == "https://{dc}.api.mailchimp.com/3.0"
    assert mailchimp.api_key_env_var == "MAILCHIMP_API_KEY"
    assert klaviyo.base_url == "https://a.klaviyo.com/api"
    assert klaviyo.api_key_env_var == "KLAVIYO_API_KEY"
    assert mailchimp.exclude_machine_opens is True
    with pytest.raises(ValidationError, match="base_url must be https"):
        EmailSource(id="mc", platform="mailchimp", base_url="http://example.com/3.0")
