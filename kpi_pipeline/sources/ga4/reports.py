"""What the GA4 source asks for (two reports) and the raw tables it fills.

A report is data: its GA4 dimensions and metrics and the columns they become. Requests ask
for one day (least sampling), order by every dimension (stable pages) and return the
property's quota so the extractor can pace itself. Users KPIs ask instead for one whole
period per request (no `date` dimension): users are not additive across days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kpi_pipeline.lib.checks import (
    DATES_IN_HISTORY,
    ENGAGED_LE_SESSIONS,
    KEY_EVENTS_PLAUSIBLE,
    counts_non_negative,
)
from kpi_pipeline.lib.tables import ColumnType, TableSpec

if TYPE_CHECKING:
    from google.analytics.data_v1beta.types import RunReportRequest


@dataclass(frozen=True)
class ReportSpec:
    """One GA4 report: `dimensions` and `metrics` map GA4 names to our column names."""

    name: str
    dimensions: tuple[tuple[str, str], ...]
    integer_metrics: tuple[tuple[str, str], ...] = ()

    @property
    def dimension_names(self) -> list[str]:
        return [ga4 for ga4, _ in self.dimensions]


TRAFFIC_REPORT = ReportSpec(
    name="traffic",
    dimensions=(
        ("date", "date"),
        ("sessionSource", "source"),
        ("sessionMedium", "medium"),
        ("sessionCampaignName", "campaign"),
        ("landingPage", "landing_page"),
        ("deviceCategory", "device"),
    ),
    integer_metrics=(("sessions", "sessions"), ("engagedSessions", "engaged_sessions")),
)
# Key events are added per source (`keyEvents` or `keyEvents:<name>`), summed into key_events.
KEY_EVENTS_COLUMN = "key_events"

EVENTS_REPORT = ReportSpec(
    name="events",
    dimensions=(
        ("date", "date"),
        ("eventName", "event_name"),
        ("sessionSource", "source"),
        ("sessionMedium", "medium"),
        ("sessionCampaignName", "campaign"),
        ("deviceCategory", "device"),
    ),
    integer_metrics=(("eventCount", "event_count"),),
)

REPORTS = (TRAFFIC_REPORT, EVENTS_REPORT)

_ROW_KEY: tuple[tuple[str, ColumnType], ...] = (("source_id", "text"), ("date", "date"))
_LINEAGE: tuple[tuple[str, ColumnType], ...] = (
    ("property_id", "text"),
    ("extracted_at", "timestamp"),
)

GA4_TRAFFIC = TableSpec(
    "raw",
    "ga4_traffic",
    (
        *_ROW_KEY,
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("landing_page", "text"),
        ("device", "text"),
        ("sessions", "bigint"),
        ("engaged_sessions", "bigint"),
        ("key_events", "double"),
        *_LINEAGE,
    ),
    grain="one row per source, date, session source/medium/campaign, landing page and device",
    keys=("source_id", "date", "source", "medium", "campaign", "landing_page", "device"),
    indexes=(("source_id", "date"),),
    checks=(
        counts_non_negative("sessions", "engaged_sessions", "key_events"),
        ENGAGED_LE_SESSIONS,
        KEY_EVENTS_PLAUSIBLE,
        DATES_IN_HISTORY,
    ),
)

GA4_EVENTS = TableSpec(
    "raw",
    "ga4_events",
    (
        *_ROW_KEY,
        ("event_name", "text"),
        ("source", "text"),
        ("medium", "text"),
        ("campaign", "text"),
        ("device", "text"),
        ("event_count", "double"),
        *_LINEAGE,
    ),
    grain="one row per source, date, event name, session source/medium/campaign and device",
    keys=("source_id", "date", "event_name", "source", "medium", "campaign", "device"),
    indexes=(("source_id", "date"),),
    checks=(counts_non_negative("event_count"), DATES_IN_HISTORY),
)

GA4_EXTRACT_LOG = TableSpec(
    "raw",
    "ga4_extract_log",
    (
        *_ROW_KEY,
        ("report", "text"),
        ("property_id", "text"),
        ("row_count", "bigint"),
        ("pages", "integer"),
        ("restarts", "integer"),
        ("sampled", "boolean"),
        ("sampling_rate", "double"),
        ("subject_to_thresholding", "boolean"),
        ("data_loss_from_other_row", "boolean"),
        ("truncation_reasons", "text"),
        ("empty_reason", "text"),
        ("time_zone", "text"),
        ("currency_code", "text"),
        ("timezone_mismatch", "boolean"),
        ("quality_flags", "text"),
        ("tokens_per_day_remaining", "bigint"),
        ("tokens_per_hour_remaining", "bigint"),
        ("extracted_at", "timestamp"),
    ),
    grain="one row per source, date and report: how the day was extracted and its quality",
    keys=("source_id", "date", "report"),
    checks=(counts_non_negative("row_count"), DATES_IN_HISTORY),
)

GA4_PERIOD_USERS = TableSpec(
    "raw",
    "ga4_period_users",
    (
        ("source_id", "text"),
        ("kpi_id", "text"),
        ("grain", "text"),
        ("period_start", "date"),
        ("period_end", "date"),
        ("through_day", "date"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("users", "bigint"),
        ("quality_flags", "text"),
        *_LINEAGE,
    ),
    grain="one row per source, users KPI, grain, period and segment: users from period start "
    "to through_day, as GA4 counted them in one request (users are not additive)",
    keys=("source_id", "kpi_id", "grain", "period_start", "segment_type", "segment"),
    checks=(counts_non_negative("users"),),
)

GA4_TABLES = (GA4_TRAFFIC, GA4_EVENTS, GA4_EXTRACT_LOG)
TABLE_OF_REPORT = {TRAFFIC_REPORT.name: GA4_TRAFFIC, EVENTS_REPORT.name: GA4_EVENTS}


def metric_names(report: ReportSpec, key_event_metrics: list[str]) -> list[str]:
    names = [ga4 for ga4, _ in report.integer_metrics]
    return [*names, *key_event_metrics] if report is TRAFFIC_REPORT else names


def build_request(
    *,
    property_id: str,
    report: ReportSpec,
    day: dt.date,
    offset: int,
    limit: int,
    key_event_metrics: list[str],
    event_names: list[str],
) -> RunReportRequest:
    """One day of `report`, one page: ordered by every dimension so pages never overlap."""
    # The API's message types (proto-plus, ~0.2 s to import) are loaded when a request is
    # built: the table specs above are read by every run, GA4 requests only by plans with
    # a GA4 source.
    from google.analytics.data_v1beta.types import (
        DateRange,
        Dimension,
        Filter,
        FilterExpression,
        Metric,
        OrderBy,
        RunReportRequest,
    )

    request = RunReportRequest(
        property=f"properties/{property_id}",
        date_ranges=[DateRange(start_date=day.isoformat(), end_date=day.isoformat())],
        dimensions=[Dimension(name=name) for name in report.dimension_names],
        metrics=[Metric(name=name) for name in metric_names(report, key_event_metrics)],
        order_bys=[
            OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=name))
            for name in report.dimension_names
        ],
        offset=offset,
        limit=limit,
        return_property_quota=True,
    )
    if report is EVENTS_REPORT:
        request.dimension_filter = FilterExpression(
            filter=Filter(
                field_name="eventName",
                in_list_filter=Filter.InListFilter(values=sorted(event_names), case_sensitive=True),
            )
        )
    return request


# GA4's device dimension, the only segment a users KPI may have (users are not additive
# across UTM combinations: one user can arrive through several).
USERS_DEVICE_DIMENSION = "deviceCategory"


def build_users_request(
    *,
    property_id: str,
    metric: str,
    start: dt.date,
    end: dt.date,
    by_device: bool,
    offset: int,
    limit: int,
) -> RunReportRequest:
    """Users of one period, counted by GA4 over the whole range (no `date` dimension)."""
    from google.analytics.data_v1beta.types import (
        DateRange,
        Dimension,
        Metric,
        OrderBy,
        RunReportRequest,
    )

    dimensions = [USERS_DEVICE_DIMENSION] if by_device else []
    return RunReportRequest(
        property=f"properties/{property_id}",
        date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
        dimensions=[Dimension(name=name) for name in dimensions],
        metrics=[Metric(name=metric)],
        order_bys=[
            OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=name)) for name in dimensions
        ],
        offset=offset,
        limit=limit,
        return_property_quota=True,
    )
