"""Klaviyo (REST API, JSON:API): email campaigns and their campaign values reports.

Calls, each paginated by following `links.next` until it is null:

- `GET /campaigns?filter=equals(messages.channel,'email')`: name, `send_time` and
  `tracking_options.utm_params` (static `utm_source` / `utm_campaign` values, when set);
- `POST /campaign-values-reports`: per campaign (summed over its messages) `recipients`,
  `bounced`, `opens_unique`, `clicks_unique` and `unsubscribe_uniques`, counted from the
  send to the time of the run. Klaviyo needs a conversion metric id for these reports.

Klaviyo's values report does not flag Apple Mail Privacy Protection opens per campaign, so
its rows say `machine_opens_excluded = false` and leave `machine_unique_opens` null: the
exclusion is recorded as not made, never assumed. It reports one bounce count (no hard/soft
split); `delivered` is recipients − bounced, as for Mailchimp.

Authentication: `Authorization: Klaviyo-API-Key <key>` and a `revision` header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.sources.email.client import EmailApiError, JsonApiClient, RetryPolicy
from kpi_pipeline.sources.email.tables import (
    EmailExtract,
    campaigns_frame,
    list_growth_frame,
    parse_time,
    utc_window,
)

PLATFORM = "klaviyo"
REVISION = "2024-10-15"
STATISTICS = ("recipients", "bounced", "opens_unique", "clicks_unique", "unsubscribe_uniques")
# Values reports accept at most 100 campaign ids in one `contains-any` filter.
IDS_PER_REPORT = 100


def klaviyo_client(
    source: EmailSource,
    api_key: str,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> JsonApiClient:
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return JsonApiClient(
        source.base_url,
        platform=PLATFORM,
        secret=api_key,
        auth_headers={"Authorization": f"Klaviyo-API-Key {api_key}"},
        extra_headers={"revision": REVISION, "Accept": "application/vnd.api+json"},
        retry=retry,
        **kwargs,
    )


def follow_next(
    client: JsonApiClient,
    path: str,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every page of a JSON:API collection (GET, or POST with the same body on each page)."""
    url: str | None = path
    first = True
    while url:
        query = params if first else None
        page = client.get(url, query) if body is None else client.post(url, body, query)
        yield page
        first = False
        url = (page.get("links") or {}).get("next")


def fetch_klaviyo(
    client: JsonApiClient,
    source: EmailSource,
    *,
    first_day: dt.date,
    last_day: dt.date,
    zone: ZoneInfo,
    extracted_at: dt.datetime | None = None,
) -> EmailExtract:
    """Email campaigns sent on the plan-timezone days first_day..last_day, with their values."""
    start, end = utc_window(first_day, last_day, zone)
    extracted_at = extracted_at or dt.datetime.now(dt.UTC)
    campaigns = {}
    for page in follow_next(client, "campaigns", {"filter": "equals(messages.channel,'email')"}):
        for item in page.get("data") or []:
            attributes = item.get("attributes") or {}
            sent_at = parse_time(attributes.get("send_time"))
            if sent_at is not None and start <= sent_at < end:
                campaigns[str(item["id"])] = (attributes, sent_at)
    totals = campaign_values(client, source, list(campaigns), start, extracted_at)
    rows = []
    for campaign_id, (attributes, sent_at) in campaigns.items():
        values = totals.get(campaign_id, {})
        utm = utm_params(attributes)
        recipients = int(values.get("recipients", 0))
        bounced = int(values.get("bounced", 0))
        opens = int(values.get("opens_unique", 0))
        rows.append(
            {
                "source_id": source.id,
                "date": sent_at.astimezone(zone).date(),
                "platform": PLATFORM,
                "campaign_id": campaign_id,
                "campaign_name": attributes.get("name") or None,
                "list_id": None,
                "send_time": pd.Timestamp(sent_at),
                "utm_source": utm.get("utm_source") or source.utm_source,
                "utm_campaign": utm.get("utm_campaign"),
                "emails_sent": recipients,
                "hard_bounces": None,
                "soft_bounces": None,
                "bounces": bounced,
                "delivered": recipients - bounced,
                "unique_opens": opens,
                "reported_unique_opens": opens,
                "machine_unique_opens": None,
                "machine_opens_excluded": False,
                "unique_clicks": int(values.get("clicks_unique", 0)),
                "unsubscribes": int(values.get("unsubscribe_uniques", 0)),
                "extracted_at": extracted_at,
            }
        )
    return EmailExtract(campaigns_frame(rows), list_growth_frame([]), client.stats)


def campaign_values(
    client: JsonApiClient,
    source: EmailSource,
    campaign_ids: list[str],
    start: dt.datetime,
    now: dt.datetime,
) -> dict[str, dict[str, float]]:
    """Statistics per campaign id, summed over the campaign's messages."""
    end = min(now, start + dt.timedelta(days=365))  # a report spans at most one year
    totals: dict[str, dict[str, float]] = {}
    for offset in range(0, len(campaign_ids), IDS_PER_REPORT):
        ids = ",".join(f"'{i}'" for i in campaign_ids[offset : offset + IDS_PER_REPORT])
        only_these = f"and(equals(send_channel,'email'),contains-any(campaign_id,[{ids}]))"
        body = {
            "data": {
                "type": "campaign-values-report",
                "attributes": {
                    "statistics": list(STATISTICS),
                    "timeframe": {"start": start.isoformat(), "end": end.isoformat()},
                    "conversion_metric_id": source.conversion_metric_id,
                    "filter": only_these,
                },
            }
        }
        for page in follow_next(client, "campaign-values-reports", body=body):
            results = ((page.get("data") or {}).get("attributes") or {}).get("results")
            if results is None:
                raise EmailApiError("klaviyo campaign-values-reports: no results in the response")
            for result in results:
                campaign_id = str((result.get("groupings") or {}).get("campaign_id"))
                into = totals.setdefault(campaign_id, {})
                for name, value in (result.get("statistics") or {}).items():
                    into[name] = into.get(name, 0) + (value or 0)
    return totals


def utm_params(attributes: Mapping[str, Any]) -> dict[str, str]:
    """Static UTM values of a campaign (`tracking_options.utm_params`), lower-cased names.

    Dynamic values (Klaviyo template tags such as `{{ campaign.name }}`) are skipped: they
    are only known per link, after rendering.
    """
    tracking = attributes.get("tracking_options") or {}
    params: dict[str, str] = {}
    for param in tracking.get("utm_params") or []:
        name, value = str(param.get("name", "")).lower(), param.get("value")
        if isinstance(value, str) and value and "{" not in value:
            params[name] = value
    return params
