"""Mailchimp Marketing API (v3.0): campaign reports and audience growth.

Calls, all paginated with `count`/`offset` until `total_items` is reached:

- `GET /reports?since_send_time&before_send_time`: per campaign `emails_sent`,
  `bounces.hard_bounces|soft_bounces`, `opens.unique_opens` and, since Apple Mail Privacy
  Protection, `opens.proxy_excluded_unique_opens` (opens not made by a privacy proxy),
  `clicks.unique_subscriber_clicks` (people who clicked) and `unsubscribed`;
- `GET /campaigns?status=sent&...`: the campaign's `tracking.google_analytics`, the
  utm_campaign value Mailchimp appends to its links (reports do not carry it);
- `GET /lists/{list_id}/activity`: daily subscribes, unsubscribes, other adds and removes.

Authentication is HTTP Basic with any user name and the API key as password; the key's
suffix names the account's data centre (`...-us6` -> `https://us6.api.mailchimp.com/3.0`).
"""

from __future__ import annotations

import base64
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

PLATFORM = "mailchimp"
_REPORT_FIELDS = ",".join(
    f"reports.{name}"
    for name in (
        "id",
        "campaign_title",
        "list_id",
        "emails_sent",
        "unsubscribed",
        "send_time",
        "bounces",
        "opens",
        "clicks",
    )
)
_CAMPAIGN_FIELDS = "campaigns.id,campaigns.tracking.google_analytics,total_items"


def mailchimp_base_url(template: str, api_key: str) -> str:
    """Fill `{dc}` in the base URL from the key's data-centre suffix (`abc123-us6` -> us6)."""
    if "{dc}" not in template:
        return template
    _, sep, dc = api_key.rpartition("-")
    if not sep or not dc.isalnum():
        raise EmailApiError(
            "the Mailchimp API key has no data-centre suffix (like -us6): cannot tell which "
            "host serves the account; set base_url in the plan"
        )
    return template.replace("{dc}", dc)


def mailchimp_client(
    source: EmailSource,
    api_key: str,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> JsonApiClient:
    token = base64.b64encode(f"kpi-pipeline:{api_key}".encode()).decode()
    kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    return JsonApiClient(
        mailchimp_base_url(source.base_url, api_key),
        platform=PLATFORM,
        secret=api_key,
        auth_headers={"Authorization": f"Basic {token}"},
        retry=retry,
        **kwargs,
    )


def paginate(
    client: JsonApiClient, path: str, items_key: str, params: Mapping[str, Any], page_size: int
) -> Iterator[dict[str, Any]]:
    """Every item of a Mailchimp collection, page by page (`count`/`offset`)."""
    offset = 0
    while True:
        page = client.get(path, {**params, "count": page_size, "offset": offset})
        items = page.get(items_key) or []
        yield from items
        offset += len(items)
        total = page.get("total_items")
        if not items or (isinstance(total, int) and offset >= total):
            return


def fetch_mailchimp(
    client: JsonApiClient,
    source: EmailSource,
    *,
    first_day: dt.date,
    last_day: dt.date,
    zone: ZoneInfo,
    extracted_at: dt.datetime | None = None,
) -> EmailExtract:
    """Campaigns sent on the plan-timezone days first_day..last_day, and those days' growth."""
    start, end = utc_window(first_day, last_day, zone)
    window = {"since_send_time": _iso(start), "before_send_time": _iso(end)}
    extracted_at = extracted_at or dt.datetime.now(dt.UTC)
    utm_campaigns = {
        c["id"]: ((c.get("tracking") or {}).get("google_analytics") or None)
        for c in paginate(
            client,
            "campaigns",
            "campaigns",
            {**window, "status": "sent", "fields": _CAMPAIGN_FIELDS},
            source.page_size,
        )
    }
    rows = []
    for report in paginate(
        client,
        "reports",
        "reports",
        {**window, "fields": f"{_REPORT_FIELDS},total_items"},
        source.page_size,
    ):
        if source.list_ids and report.get("list_id") not in source.list_ids:
            continue
        row = report_row(report, source, zone, utm_campaigns.get(report["id"]))
        if row is not None and first_day <= row["date"] <= last_day:
            rows.append({**row, "extracted_at": extracted_at})
    growth = [
        {**row, "extracted_at": extracted_at}
        for list_id in source.list_ids
        for row in list_activity_rows(client, source, list_id)
        if first_day <= row["date"] <= last_day
    ]
    return EmailExtract(campaigns_frame(rows), list_growth_frame(growth), client.stats)


def report_row(
    report: Mapping[str, Any], source: EmailSource, zone: ZoneInfo, utm_campaign: str | None
) -> dict[str, Any] | None:
    """One campaign report as a raw row; None for a report without a send time (not sent)."""
    send_time = parse_time(report.get("send_time"))
    if send_time is None:
        return None
    bounces = report.get("bounces") or {}
    opens = report.get("opens") or {}
    clicks = report.get("clicks") or {}
    sent = int(report.get("emails_sent") or 0)
    hard = int(bounces.get("hard_bounces") or 0)
    soft = int(bounces.get("soft_bounces") or 0)
    reported_opens = int(opens.get("unique_opens") or 0)
    human_opens = opens.get("proxy_excluded_unique_opens")
    machine_opens = None if human_opens is None else reported_opens - int(human_opens)
    excluded = source.exclude_machine_opens and human_opens is not None
    clickers = clicks.get("unique_subscriber_clicks", clicks.get("unique_clicks"))
    return {
        "source_id": source.id,
        "date": send_time.astimezone(zone).date(),
        "platform": PLATFORM,
        "campaign_id": str(report["id"]),
        "campaign_name": report.get("campaign_title") or None,
        "list_id": report.get("list_id") or None,
        "send_time": pd.Timestamp(send_time),
        "utm_source": source.utm_source,
        "utm_campaign": utm_campaign,
        "emails_sent": sent,
        "hard_bounces": hard,
        "soft_bounces": soft,
        "bounces": hard + soft,
        "delivered": sent - hard - soft,
        "unique_opens": int(human_opens) if excluded else reported_opens,
        "reported_unique_opens": reported_opens,
        "machine_unique_opens": machine_opens,
        "machine_opens_excluded": excluded,
        "unique_clicks": int(clickers or 0),
        "unsubscribes": int(report.get("unsubscribed") or 0),
    }


def list_activity_rows(
    client: JsonApiClient, source: EmailSource, list_id: str
) -> Iterator[dict[str, Any]]:
    """Daily growth of one audience (Mailchimp keeps the last 180 days)."""
    for day in paginate(client, f"lists/{list_id}/activity", "activity", {}, source.page_size):
        yield {
            "source_id": source.id,
            "date": dt.date.fromisoformat(str(day["day"])[:10]),
            "list_id": list_id,
            "subscribes": int(day.get("subs") or 0),
            "unsubscribes": int(day.get("unsubs") or 0),
            "other_adds": int(day.get("other_adds") or 0),
            "other_removes": int(day.get("other_removes") or 0),
        }


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
