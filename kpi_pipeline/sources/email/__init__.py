"""Email platforms (Mailchimp, Klaviyo): campaign reports as raw rows keyed by send day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.sources.email.client import (
    EmailApiError,
    EmailAuthError,
    EmailRequestRejected,
    EmailRetriesExhausted,
    JsonApiClient,
    RetryPolicy,
)
from kpi_pipeline.sources.email.klaviyo import fetch_klaviyo, klaviyo_client
from kpi_pipeline.sources.email.mailchimp import fetch_mailchimp, mailchimp_client
from kpi_pipeline.sources.email.tables import (
    EMAIL_CAMPAIGNS,
    EMAIL_LIST_GROWTH,
    EMAIL_TABLES,
    EmailExtract,
)

__all__ = [
    "EMAIL_CAMPAIGNS",
    "EMAIL_LIST_GROWTH",
    "EMAIL_TABLES",
    "EmailApiError",
    "EmailAuthError",
    "EmailExtract",
    "EmailRequestRejected",
    "EmailRetriesExhausted",
    "JsonApiClient",
    "RetryPolicy",
    "extract_email",
    "open_email_client",
]


def open_email_client(
    source: EmailSource,
    api_key: str,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
) -> JsonApiClient:
    factory = mailchimp_client if source.platform == "mailchimp" else klaviyo_client
    return factory(source, api_key, retry=retry, sleep=sleep)


def extract_email(
    client: JsonApiClient,
    source: EmailSource,
    *,
    first_day: dt.date,
    last_day: dt.date,
    zone: ZoneInfo,
    extracted_at: dt.datetime | None = None,
) -> EmailExtract:
    """Campaigns sent on first_day..last_day (plan timezone) from the source's platform."""
    fetch = fetch_mailchimp if source.platform == "mailchimp" else fetch_klaviyo
    return fetch(
        client,
        source,
        first_day=first_day,
        last_day=last_day,
        zone=zone,
        extracted_at=extracted_at,
    )
