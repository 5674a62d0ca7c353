"""Stream one GA4 property's days, page by page, with restarts, retries and pacing.

`Ga4Extractor.stream_day` yields each page as a typed frame as soon as it arrives (memory
stays flat whatever the page count) and ends with a `DayLog`. A page with `starts_attempt`
tells the writer to drop what it holds for that day and report first: that both replaces
the day's previous values and discards a query restarted because `row_count` moved.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from kpi_pipeline.plan.ga4 import Ga4Source
from kpi_pipeline.sources.ga4.parsing import (
    Ga4DataError,
    Quality,
    QuotaSnapshot,
    quality_of,
    quota_of,
    rows_frame,
    users_frame,
)
from kpi_pipeline.sources.ga4.reports import (
    EVENTS_REPORT,
    REPORTS,
    ReportSpec,
    build_request,
    build_users_request,
)
from kpi_pipeline.sources.ga4.retry import (
    QuotaPacer,
    Retried,
    RetryPolicy,
    call_with_retry,
)

if TYPE_CHECKING:
    from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse


class ReportClient(Protocol):
    """What the extractor needs of `BetaAnalyticsDataClient`."""

    def run_report(self, request: RunReportRequest) -> RunReportResponse: ...


@dataclass(frozen=True)
class ReportPage:
    report: ReportSpec
    day: dt.date
    frame: pd.DataFrame
    starts_attempt: bool


@dataclass(frozen=True)
class DayLog:
    """How one day of one report was extracted; a row of `raw.ga4_extract_log`."""

    report: ReportSpec
    day: dt.date
    row_count: int
    pages: int
    restarts: int
    quality: Quality
    quota: QuotaSnapshot
    flags: tuple[str, ...]


@dataclass
class ExtractStats:
    requests: int = 0
    retries: list[Retried] = field(default_factory=list)
    paced_seconds: float = 0.0
    last_quota: QuotaSnapshot = field(default_factory=QuotaSnapshot)
    lowest_quota: dict[str, int] = field(default_factory=dict)

    def saw(self, quota: QuotaSnapshot) -> None:
        self.last_quota = quota
        for name in ("tokens_per_day", "tokens_per_hour", "tokens_per_project_per_hour"):
            value = getattr(quota, name)
            if value is not None:
                self.lowest_quota[name] = min(value, self.lowest_quota.get(name, value))


class RowCountDrift(Ga4DataError):
    """`row_count` kept changing between pages, restart after restart."""


class Ga4Extractor:
    def __init__(
        self,
        client: ReportClient,
        source: Ga4Source,
        *,
        event_names: list[str],
        plan_timezone: str,
        retry: RetryPolicy | None = None,
        pacer: QuotaPacer | None = None,
        max_restarts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.source = source
        self.event_names = sorted(set(event_names))
        self.plan_timezone = plan_timezone
        self.retry = retry or RetryPolicy()
        self.pacer = pacer or QuotaPacer()
        self.max_restarts = max_restarts
        self.sleep = sleep
        self.clock = clock
        self.stats = ExtractStats()

    @property
    def reports(self) -> tuple[ReportSpec, ...]:
        """The events report only when the plan counts some event."""
        return tuple(r for r in REPORTS if r is not EVENTS_REPORT or self.event_names)

    def stream_day(self, report: ReportSpec, day: dt.date) -> Iterator[ReportPage | DayLog]:
        """Pages of one day, then its `DayLog`; restarts the day when `row_count` moves."""
        restarts = 0
        while True:
            offset, pages, expected = 0, 0, None
            quality, quota = Quality(), QuotaSnapshot()
            while True:
                response = self._run(report, day, offset)
                quality = quality.merge(quality_of(response.metadata))
                quota = quota_of(response)
                if expected is None:
                    expected = response.row_count
                elif response.row_count != expected:
                    break  # the data moved under us: this attempt's pages are worthless
                frame = rows_frame(response, report, self.source.key_event_metrics, day)
                yield ReportPage(report, day, frame, starts_attempt=pages == 0)
                pages += 1
                offset += len(frame)
                if len(frame) == 0 or offset >= expected:
                    yield DayLog(
                        report=report,
                        day=day,
                        row_count=offset,
                        pages=pages,
                        restarts=restarts,
                        quality=quality,
                        quota=quota,
                        flags=tuple(quality.flags(self.plan_timezone)),
                    )
                    return
            restarts += 1
            if restarts > self.max_restarts:
                raise RowCountDrift(
                    f"{report.name} report for {day}: row_count changed between pages "
                    f"{restarts} times; try again later"
                )

    def period_users(
        self, metric: str, start: dt.date, end: dt.date, *, by_device: bool
    ) -> tuple[pd.DataFrame, tuple[str, ...]]:
        """Users over [start, end] in one query (whole, or one row per device) and its flags.

        Same paging, restarts, retries and pacing as the daily reports; the rows are few.
        """
        restarts = 0
        while True:
            offset, expected, frames = 0, None, []
            quality = Quality()
            while True:
                request = build_users_request(
                    property_id=self.source.property_id,
                    metric=metric,
                    start=start,
                    end=end,
                    by_device=by_device,
                    offset=offset,
                    limit=self.source.page_size,
                )
                response = self._call(request)
                quality = quality.merge(quality_of(response.metadata))
                if expected is None:
                    expected = response.row_count
                elif response.row_count != expected:
                    break
                frame = users_frame(response, metric, by_device=by_device)
                frames.append(frame)
                offset += len(frame)
                if len(frame) == 0 or offset >= expected:
                    rows = pd.concat(frames, ignore_index=True)
                    if not by_device and rows.empty:
                        rows = users_frame(None, metric, by_device=False)  # no data: 0 users
                    return rows, tuple(quality.flags(self.plan_timezone))
            restarts += 1
            if restarts > self.max_restarts:
                raise RowCountDrift(
                    f"{metric} for {start}..{end}: row_count changed between pages "
                    f"{restarts} times; try again later"
                )

    def _run(self, report: ReportSpec, day: dt.date, offset: int) -> RunReportResponse:
        request = build_request(
            property_id=self.source.property_id,
            report=report,
            day=day,
            offset=offset,
            limit=self.source.page_size,
            key_event_metrics=self.source.key_event_metrics,
            event_names=self.event_names,
        )
        return self._call(request)

    def _call(self, request: RunReportRequest) -> RunReportResponse:
        def call() -> RunReportResponse:
            self.stats.requests += 1
            return self.client.run_report(request=request)

        response = call_with_retry(
            call, self.retry, sleep=self.sleep, clock=self.clock, on_retry=self.stats.retries.append
        )
        quota = quota_of(response)
        self.stats.saw(quota)
        pause = self.pacer.pause_after(quota)
        if pause > 0:
            self.stats.paced_seconds += pause
            self.sleep(pause)
        return response


def property_yesterday(now: dt.datetime, time_zone: str) -> dt.date:
    """Yesterday where the property lives: GA4's `date` is a day of the property's zone."""
    from zoneinfo import ZoneInfo

    return now.astimezone(ZoneInfo(time_zone)).date() - dt.timedelta(days=1)
