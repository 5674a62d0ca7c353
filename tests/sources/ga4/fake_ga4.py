"""A fake GA4 Data API: a real gRPC server on 127.0.0.1 speaking the package's own messages.

Tests script it: rows per report and day, the property's time zone and currency, sampling
and thresholding per day, a queue of errors to raise before serving, a page cap, and a hook
called before each request (to revise numbers or move `row_count` between pages).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from google.analytics.data_v1beta.types import RunReportRequest, RunReportResponse

SERVICE = "google.analytics.data.v1beta.BetaAnalyticsData"
_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
_PB = RunReportResponse.pb()


RowMaker = Callable[[int, int], list[list[str]]]  # (offset, limit) -> rows of values


@dataclass(frozen=True)
class Fault:
    code: grpc.StatusCode
    message: str


DAILY_QUOTA = Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "Exhausted property tokens per day.")
HOURLY_QUOTA = Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "Exhausted property tokens per hour.")
CONCURRENT_QUOTA = Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "Exhausted concurrent requests quota.")
UNAVAILABLE = Fault(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable.")


USERS_METRICS = ("totalUsers", "activeUsers", "newUsers")


def report_of(request: RunReportRequest) -> str:
    if any(m.name in USERS_METRICS for m in request.metrics):
        return "users"
    return "events" if any(d.name == "eventName" for d in request.dimensions) else "traffic"


def range_of(request: RunReportRequest) -> tuple[dt.date, dt.date]:
    (date_range,) = request.date_ranges
    return dt.date.fromisoformat(date_range.start_date), dt.date.fromisoformat(date_range.end_date)


def day_of(request: RunReportRequest) -> dt.date:
    return dt.date.fromisoformat(request.date_ranges[0].start_date)


@dataclass
class FakeGa4:
    """Rows are dicts of GA4 field name -> string value, stored per (report, day)."""

    time_zone: str = "America/Toronto"
    currency_code: str = "CAD"
    max_page_rows: int | None = None  # the API may return fewer rows than `limit`
    rows: dict[tuple[str, dt.date], list[dict[str, str]]] = field(default_factory=dict)
    # Users over a date range, as GA4 counts them (not additive): (metric, start, end) ->
    # {"all": total, "<device>": users of that device}.
    users: dict[tuple[str, dt.date, dt.date], dict[str, str]] = field(default_factory=dict)
    sampled: dict[dt.date, tuple[int, int]] = field(default_factory=dict)  # read, space
    thresholded: set[dt.date] = field(default_factory=set)
    faults: deque[Fault] = field(default_factory=deque)
    fault_on: Callable[[RunReportRequest], Fault | None] | None = None
    before_request: Callable[[FakeGa4, RunReportRequest], None] | None = None
    tokens_per_day: int = 200_000
    tokens_per_hour: int = 40_000
    tokens_per_request: int = 10
    requests: list[RunReportRequest] = field(default_factory=list)
    # For the benchmark: (report, day) -> (row_count, rows(offset, limit)) generated lazily.
    generated: Callable[[str, dt.date], tuple[int, RowMaker]] | None = None

    def add(self, report: str, day: dt.date, **values: str | int) -> None:
        """One row; keyword names are GA4 names (`sessionSource=...`, `sessions="12.0"`)."""
        row = {"date": day.strftime("%Y%m%d"), **{k: str(v) for k, v in values.items()}}
        self.rows.setdefault((report, day), []).append(row)

    def traffic(
        self,
        day: dt.date,
        source: str,
        medium: str,
        campaign: str,
        sessions: str | int,
        engaged: str | int,
        key_events: str | int,
        *,
        device: str = "desktop",
        page: str = "/",
        **extra: str | int,
    ) -> None:
        self.add(
            "traffic",
            day,
            sessionSource=source,
            sessionMedium=medium,
            sessionCampaignName=campaign,
            landingPage=page,
            deviceCategory=device,
            sessions=sessions,
            engagedSessions=engaged,
            keyEvents=key_events,
            **extra,
        )

    def event(
        self,
        day: dt.date,
        name: str,
        source: str,
        medium: str,
        campaign: str,
        count: str | int,
        *,
        device: str = "desktop",
    ) -> None:
        self.add(
            "events",
            day,
            eventName=name,
            sessionSource=source,
            sessionMedium=medium,
            sessionCampaignName=campaign,
            deviceCategory=device,
            eventCount=count,
        )

    # -- the RPC -------------------------------------------------------------------------

    def run_report(self, request: RunReportRequest, context: grpc.ServicerContext):
        self.requests.append(request)
        if self.before_request is not None:
            self.before_request(self, request)
        fault = self.faults.popleft() if self.faults else None
        if fault is None and self.fault_on is not None:
            fault = self.fault_on(request)
        if fault is not None:
            context.abort(fault.code, fault.message)
        return self._respond(request)

    def _respond(self, request: RunReportRequest):
        report, day = report_of(request), day_of(request)
        dimensions = [d.name for d in request.dimensions]
        metrics = [m.name for m in request.metrics]
        limit = request.limit or 10_000
        if self.max_page_rows is not None:
            limit = min(limit, self.max_page_rows)
        response = _PB()
        if self.generated is not None:
            row_count, make_rows = self.generated(report, day)
            page = make_rows(request.offset, limit)
        else:
            selected = self._selected(request, report, day)
            selected.sort(key=lambda row: [row.get(name, "") for name in dimensions])
            row_count = len(selected)
            page = [
                [row.get(name, "(not set)") for name in dimensions]
                + [row.get(name, "0") for name in metrics]
                for row in selected[request.offset : request.offset + limit]
            ]
        for name in dimensions:
            response.dimension_headers.add(name=name)
        for name in metrics:
            response.metric_headers.add(name=name, type_=1)
        n_dimensions = len(dimensions)
        for values in page:
            row = response.rows.add()
            for value in values[:n_dimensions]:
                row.dimension_values.add(value=value)
            for value in values[n_dimensions:]:
                row.metric_values.add(value=value)
        response.row_count = row_count
        response.metadata.time_zone = self.time_zone
        response.metadata.currency_code = self.currency_code
        if day in self.sampled:
            read, space = self.sampled[day]
            response.metadata.sampling_metadatas.add(
                samples_read_count=read, sampling_space_size=space
            )
        response.metadata.subject_to_thresholding = day in self.thresholded
        if request.return_property_quota:
            self.tokens_per_day -= self.tokens_per_request
            self.tokens_per_hour -= self.tokens_per_request
            quota = response.property_quota
            quota.tokens_per_day.consumed = self.tokens_per_request
            quota.tokens_per_day.remaining = self.tokens_per_day
            quota.tokens_per_hour.consumed = self.tokens_per_request
            quota.tokens_per_hour.remaining = self.tokens_per_hour
        return response

    def _selected(self, request: RunReportRequest, report: str, day: dt.date) -> list[dict]:
        if report == "users":
            return self._users_rows(request)
        rows = list(self.rows.get((report, day), []))
        wanted = request.dimension_filter.filter.in_list_filter.values
        if wanted:
            rows = [row for row in rows if row.get("eventName") in set(wanted)]
        return rows

    def _users_rows(self, request: RunReportRequest) -> list[dict]:
        (metric,) = [m.name for m in request.metrics]
        scripted = self.users.get((metric, *range_of(request)), {})
        if any(d.name == "deviceCategory" for d in request.dimensions):
            return [
                {"deviceCategory": device, metric: value}
                for device, value in scripted.items()
                if device != "all"
            ]
        return [{metric: scripted["all"]}] if "all" in scripted else []


@contextmanager
def serve(fake: FakeGa4) -> Iterator[str]:
    """Serve `fake` on 127.0.0.1 (a free port); yields the `host:port` target."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=_OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(
        fake.run_report,
        request_deserializer=RunReportRequest.deserialize,
        response_serializer=lambda message: message.SerializeToString(),
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"RunReport": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
