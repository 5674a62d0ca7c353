"""What the email platforms emit: campaign totals keyed by send day, and list growth per day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd

from kpi_pipeline.lib.checks import DATES_IN_HISTORY, Expect, counts_non_negative
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.sources.email.client import CallStats

EMAIL_CAMPAIGNS = TableSpec(
    schema="raw",
    name="email_campaigns",
    columns=(
        ("source_id", "text"),
        ("date", "date"),  # send day in the plan's timezone: the partition key
        ("platform", "text"),
        ("campaign_id", "text"),
        ("campaign_name", "text"),
        ("list_id", "text"),
        ("send_time", "timestamp"),
        ("utm_source", "text"),
        ("utm_campaign", "text"),
        ("emails_sent", "bigint"),
        ("hard_bounces", "bigint"),  # null where the platform gives one bounce count only
        ("soft_bounces", "bigint"),
        ("bounces", "bigint"),
        ("delivered", "bigint"),  # emails_sent - bounces
        ("unique_opens", "bigint"),  # machine opens left out when machine_opens_excluded
        ("reported_unique_opens", "bigint"),  # the platform's headline figure
        ("machine_unique_opens", "bigint"),  # flagged by the platform; null if it flags none
        ("machine_opens_excluded", "boolean"),
        ("unique_clicks", "bigint"),  # subscribers who clicked
        ("unsubscribes", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    grain="one row per email source and campaign, dated by its send day (plan timezone)",
    keys=("source_id", "campaign_id"),
    indexes=(("source_id", "date"),),
    checks=(
        counts_non_negative("emails_sent", "delivered", "unique_opens", "unique_clicks"),
        Expect(
            "events_plausible",
            "a_le_b",
            ("unique_opens", "delivered"),
            "unique opens never exceed delivered emails",
        ),
        DATES_IN_HISTORY,
    ),
)

EMAIL_LIST_GROWTH = TableSpec(
    schema="raw",
    name="email_list_growth",
    columns=(
        ("source_id", "text"),
        ("date", "date"),
        ("list_id", "text"),
        ("subscribes", "bigint"),
        ("unsubscribes", "bigint"),
        ("other_adds", "bigint"),
        ("other_removes", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    grain="one row per email source, audience and day",
    keys=("source_id", "list_id", "date"),
    checks=(counts_non_negative("subscribes", "unsubscribes"), DATES_IN_HISTORY),
)

EMAIL_TABLES = (EMAIL_CAMPAIGNS, EMAIL_LIST_GROWTH)


@dataclass
class EmailExtract:
    """One source's campaigns and list growth over a window, and how the calls went."""

    campaigns: pd.DataFrame
    list_growth: pd.DataFrame
    stats: CallStats = field(default_factory=CallStats)

    @property
    def machine_opens_excluded(self) -> int:
        """Unique opens flagged as machine/privacy opens and left out of `unique_opens`."""
        frame = self.campaigns
        if frame.empty:
            return 0
        return int(frame.loc[frame["machine_opens_excluded"], "machine_unique_opens"].sum())


def utc_window(first_day: dt.date, last_day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, ...]:
    """[start, end) in UTC of the plan-timezone days first_day..last_day."""
    start = dt.datetime.combine(first_day, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return start, end


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO 8601 timestamp from an API (`Z` or offset) as an aware UTC datetime."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def campaigns_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=EMAIL_CAMPAIGNS.column_names)
    return frame.astype({"machine_opens_excluded": bool})


def list_growth_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EMAIL_LIST_GROWTH.column_names)
