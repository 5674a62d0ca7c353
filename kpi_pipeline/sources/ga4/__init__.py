"""GA4 through the official Data API client: reports, paging, retries, pacing, quality flags.

Resource-agnostic: the extractor takes any object with `run_report(request=...)` (in
production and in tests, a real `BetaAnalyticsDataClient`) and yields typed frames; it knows
nothing of Dagster or the warehouse.
"""

from kpi_pipeline.sources.ga4.extract import (
    DayLog,
    Ga4Extractor,
    ReportPage,
    RowCountDrift,
    property_yesterday,
)
from kpi_pipeline.sources.ga4.parsing import Ga4DataError, Quality, QuotaSnapshot, parse_metric
from kpi_pipeline.sources.ga4.reports import (
    EVENTS_REPORT,
    GA4_EVENTS,
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    GA4_TABLES,
    GA4_TRAFFIC,
    TABLE_OF_REPORT,
    TRAFFIC_REPORT,
)
from kpi_pipeline.sources.ga4.retry import (
    DailyQuotaExhausted,
    Ga4Error,
    Ga4RequestRejected,
    Ga4RetriesExhausted,
    QuotaPacer,
    RetryPolicy,
)

__all__ = [
    "EVENTS_REPORT",
    "GA4_EVENTS",
    "GA4_EXTRACT_LOG",
    "GA4_PERIOD_USERS",
    "GA4_TABLES",
    "GA4_TRAFFIC",
    "TABLE_OF_REPORT",
    "TRAFFIC_REPORT",
    "DailyQuotaExhausted",
    "DayLog",
    "Ga4DataError",
    "Ga4Error",
    "Ga4Extractor",
    "Ga4RequestRejected",
    "Ga4RetriesExhausted",
    "Quality",
    "QuotaPacer",
    "QuotaSnapshot",
    "ReportPage",
    "RetryPolicy",
    "RowCountDrift",
    "parse_metric",
    "property_yesterday",
]
