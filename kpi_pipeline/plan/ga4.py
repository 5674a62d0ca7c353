"""The GA4 source of a plan: which property to read, with which credentials, how far back.

GA4 reports come from the Data API (`google-analytics-data`); this module only says what the
plan asks for. A plan may declare CSV exports, GA4 properties or both; when both are
declared, `sources.traffic_source` says which one feeds the KPIs, so sessions are never
counted twice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kpi_pipeline.plan.base import ALLOW_MISSING_DAYS_DESCRIPTION, Identifier, StrictModel

# The API caps a page at 250,000 rows whatever `limit` asks for.
GA4_MAX_PAGE_SIZE = 250_000
# A request has at most 10 metrics; the traffic report already uses sessions and engagedSessions.
GA4_MAX_KEY_EVENTS = 8

TrafficSource = Literal["csv_exports", "ga4"]


class Ga4Source(StrictModel):
    """One GA4 property read through the Data API, one day per request."""

    id: Identifier
    property_id: str = Field(pattern=r"^[0-9]{1,20}$", description="Numeric GA4 property id.")
    credentials_env_var: str = Field(
        default="GA4_CREDENTIALS_FILE",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable naming the service-account JSON file (never the key).",
    )
    lookback_days: int = Field(
        default=3, ge=0, le=90, description="Earlier days re-pulled by every run (revisions)."
    )
    page_size: int = Field(default=100_000, ge=1, le=GA4_MAX_PAGE_SIZE)
    allow_missing_days: bool = Field(default=False, description=ALLOW_MISSING_DAYS_DESCRIPTION)
    key_events: list[str] = Field(
        default_factory=list,
        description="Key events counted as conversions (e.g. [purchase] -> keyEvents:purchase); "
        "empty means every key event (keyEvents).",
    )

    @field_validator("key_events")
    @classmethod
    def _key_events(cls, value: list[str]) -> list[str]:
        if len(value) > GA4_MAX_KEY_EVENTS:
            raise ValueError(
                f"at most {GA4_MAX_KEY_EVENTS} key events: a GA4 request has at most 10 metrics"
            )
        if len(set(value)) != len(value):
            raise ValueError("a key event is listed twice")
        for name in value:
            if not name or not all(c.isalnum() or c == "_" for c in name):
                raise ValueError(f"{name!r} is not a GA4 event name (letters, digits, _)")
        return value

    @property
    def key_event_metrics(self) -> list[str]:
        """GA4 metric names whose sum is this source's `key_events` measure."""
        return [f"keyEvents:{name}" for name in self.key_events] or ["keyEvents"]
