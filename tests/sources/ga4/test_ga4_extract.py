"""The extractor with the real `BetaAnalyticsDataClient` against the loopback fake server.

Time is injected: sleeps are recorded, never slept, so retry and pacing bounds are exact.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pandas as pd
import pytest
from conftest import MON, TUE
from fake_ga4 import CONCURRENT_QUOTA, DAILY_QUOTA, HOURLY_QUOTA, UNAVAILABLE, FakeGa4, Fault

from kpi_pipeline.plan.ga4 import Ga4Source
from kpi_pipeline.sources.ga4 import (
    EVENTS_REPORT,
    TRAFFIC_REPORT,
    DailyQuotaExhausted,
    DayLog,
    Ga4DataError,
    Ga4Extractor,
    Ga4RequestRejected,
    Ga4RetriesExhausted,
    QuotaPacer,
    ReportPage,
    RetryPolicy,
    RowCountDrift,
    parse_metric,
)
from kpi_pipeline.sources.ga4.client import Ga4ConfigError, open_client

SOURCE = Ga4Source(id="site", property_id="123", page_size=2)


class FakeTime:
    """A clock that only moves when the code sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def extractor(client, time: FakeTime, source: Ga4Source = SOURCE, **kwargs) -> Ga4Extractor:
    return Ga4Extractor(
        client,
        source,
        event_names=kwargs.pop("event_names", ["form_start"]),
        plan_timezone=kwargs.pop("plan_timezone", "America/Toronto"),
        sleep=time.sleep,
        clock=time.clock,
        **kwargs,
    )


def load(ext: Ga4Extractor, report, day) -> tuple[pd.DataFrame, DayLog]:
    """What the warehouse writer does: a page that starts an attempt drops what came before."""
    frames: list[pd.DataFrame] = []
    log = None
    for item in ext.stream_day(report, day):
        if isinstance(item, ReportPage):
            if item.starts_attempt:
                frames = []
            frames.append(item.frame)
        else:
            log = item
    assert log is not None
    return pd.concat(frames, ignore_index=True), log


def five_rows(fake: FakeGa4, day: dt.date = MON) -> None:
    for n in range(5):
        fake.traffic(day, f"source{n}", "referral", "(not set)", str(10 + n), "1", "0")


def test_pages_cover_every_row_once_and_requests_are_stable(fake, ga4_client):
    five_rows(fake)
    time = FakeTime()
    frame, log = load(extractor(ga4_client, time), TRAFFIC_REPORT, MON)
    assert sorted(frame["sessions"]) == [10, 11, 12, 13, 14]
    assert (log.row_count, log.pages, log.restarts) == (5, 3, 0)
    assert [r.offset for r in fake.requests] == [0, 2, 4]
    first = fake.requests[0]
    # One day per request, page size as configured, quota asked for, and an order_by on
    # every dimension so that pages never overlap or skip rows.
    assert (first.date_ranges[0].start_date, first.date_ranges[0].end_date) == ("2026-01-05",) * 2
    assert first.limit == 2 and first.return_property_quota
    assert [o.dimension.dimension_name for o in first.order_bys] == [
        d.name for d in first.dimensions
    ]
    assert first.property == "properties/123"
    assert time.sleeps == []


def test_pages_shorter_than_the_limit_advance_by_rows_received(fake, ga4_client):
    # The API may return fewer rows than `limit`: the offset follows what actually came.
    five_rows(fake)
    fake.max_page_rows = 1
    frame, log = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)
    assert len(frame) == 5 and log.pages == 5
    assert [r.offset for r in fake.requests] == [0, 1, 2, 3, 4]


def test_an_empty_day_is_one_request_and_an_empty_page(fake, ga4_client):
    frame, log = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)
    assert frame.empty and (log.row_count, log.pages) == (0, 1)
    assert len(fake.requests) == 1


def test_quota_error_twice_then_success(fake, ga4_client):
    five_rows(fake)
    fake.faults.extend([CONCURRENT_QUOTA, HOURLY_QUOTA])
    time = FakeTime()
    policy = RetryPolicy(initial_seconds=1, maximum_seconds=8, hourly_quota_wait_seconds=120)
    ext = extractor(ga4_client, time, retry=policy)
    frame, _ = load(ext, TRAFFIC_REPORT, MON)
    assert len(frame) == 5
    # 2 failed + 3 pages. Concurrency: a short jittered back-off within the first bound (1 s);
    # the hourly quota: at least the configured wait.
    assert len(fake.requests) == 5
    assert len(time.sleeps) == 2
    assert 0 <= time.sleeps[0] <= 1
    assert time.sleeps[1] == 120
    assert [r.attempt for r in ext.stats.retries] == [1, 2]


def test_transient_errors_stop_after_the_attempt_bound(fake, ga4_client):
    fake.faults.extend([UNAVAILABLE] * 10)
    time = FakeTime()
    policy = RetryPolicy(initial_seconds=1, maximum_seconds=4, max_attempts=4)
    with pytest.raises(Ga4RetriesExhausted, match="4 attempt"):
        load(extractor(ga4_client, time, retry=policy), TRAFFIC_REPORT, MON)
    assert len(fake.requests) == 4 and len(time.sleeps) == 3
    # Exponential bounds with jitter: each delay lies in [0, 1], [0, 2], [0, 4].
    assert all(0 <= s <= bound for s, bound in zip(time.sleeps, [1, 2, 4], strict=True))


def test_transient_errors_stop_at_the_time_bound(fake, ga4_client):
    # An hourly quota wait of 300 s does not fit in a 200 s budget: give up at once.
    fake.faults.extend([HOURLY_QUOTA] * 3)
    time = FakeTime()
    policy = RetryPolicy(deadline_seconds=200, hourly_quota_wait_seconds=300)
    with pytest.raises(Ga4RetriesExhausted):
        load(extractor(ga4_client, time, retry=policy), TRAFFIC_REPORT, MON)
    assert len(fake.requests) == 1 and time.sleeps == []


def test_daily_quota_is_not_retried(fake, ga4_client):
    fake.faults.append(DAILY_QUOTA)
    time = FakeTime()
    with pytest.raises(DailyQuotaExhausted, match="per day"):
        load(extractor(ga4_client, time), TRAFFIC_REPORT, MON)
    assert len(fake.requests) == 1 and time.sleeps == []


def test_invalid_argument_is_never_retried_and_keeps_its_message(fake, ga4_client):
    message = "Field keyEvents:purchse is not a valid metric."
    fake.faults.append(Fault(grpc.StatusCode.INVALID_ARGUMENT, message))
    time = FakeTime()
    with pytest.raises(Ga4RequestRejected) as caught:
        load(extractor(ga4_client, time), TRAFFIC_REPORT, MON)
    assert message in str(caught.value)
    assert len(fake.requests) == 1 and time.sleeps == []


def test_row_count_drift_restarts_the_day(fake, ga4_client):
    five_rows(fake)

    def late_row_before_second_page(fake: FakeGa4, request) -> None:
        if len(fake.requests) == 2:  # data moves while we page
            fake.traffic(MON, "late", "referral", "(not set)", "99", "1", "0")

    fake.before_request = late_row_before_second_page
    frame, log = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)
    # Attempt 1: page 1 (row_count 5), page 2 sees row_count 6 -> restart from offset 0.
    # Attempt 2 reads 6 rows in 3 pages. Every row exactly once, none from attempt 1 kept.
    assert log.restarts == 1 and log.row_count == 6
    assert sorted(frame["source"]) == [
        "late",
        "source0",
        "source1",
        "source2",
        "source3",
        "source4",
    ]
    assert [r.offset for r in fake.requests] == [0, 2, 0, 2, 4]


def test_row_count_that_never_settles_fails_the_day(fake, ga4_client):
    five_rows(fake)

    def always_moving(fake: FakeGa4, request) -> None:
        if request.offset > 0:
            fake.traffic(MON, f"late{len(fake.requests)}", "referral", "x", "1", "1", "0")

    fake.before_request = always_moving
    with pytest.raises(RowCountDrift):
        load(extractor(ga4_client, FakeTime(), max_restarts=2), TRAFFIC_REPORT, MON)


def test_metric_strings_are_parsed_exactly(fake, ga4_client):
    fake.traffic(MON, "a", "b", "c", "12.0", "7", "0.5")
    frame, _ = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)
    assert frame["sessions"].dtype == "int64" and frame["sessions"].tolist() == [12]
    assert frame["engaged_sessions"].tolist() == [7]
    assert frame["key_events"].tolist() == [0.5]


@pytest.mark.parametrize(
    ("text", "integer", "expected"),
    [
        ("12", True, 12),
        ("12.0", True, 12),  # GA4 sends integers like this
        ("1e3", True, 1000),
        ("0.25", False, 0.25),
        ("9007199254740992", True, 2**53),  # the largest integer a double holds exactly
    ],
)
def test_parse_metric_values(text, integer, expected):
    parsed = parse_metric(pd.Series([text], dtype=object), "m", integer=integer)
    assert parsed.iloc[0] == expected


@pytest.mark.parametrize(("text", "integer"), [("12.5", True), ("", False), ("NaN", False)])
def test_parse_metric_refuses_what_is_not_a_clean_number(text, integer):
    with pytest.raises(Ga4DataError):
        parse_metric(pd.Series([text], dtype=object), "sessions", integer=integer)


def test_a_row_of_another_day_is_refused(fake, ga4_client):
    # One day per request: a row dated otherwise means the response is not what was asked.
    fake.traffic(MON, "a", "b", "c", "1", "1", "0")
    fake.rows[("traffic", MON)][0]["date"] = "20260106"
    with pytest.raises(Ga4DataError, match="another day"):
        load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)


def test_sampling_and_thresholding_reach_the_day_log(fake, ga4_client):
    five_rows(fake, TUE)
    fake.sampled[TUE] = (250_000, 1_000_000)
    fake.thresholded.add(TUE)
    _, log = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, TUE)
    assert log.quality.sampling_rate == 0.25
    assert log.quality.subject_to_thresholding
    assert log.flags == ("sampled", "thresholded")
    assert log.quality.time_zone == "America/Toronto" and log.quality.currency_code == "CAD"


def test_a_property_in_another_time_zone_is_flagged(fake, ga4_client):
    fake.time_zone = "Europe/Paris"
    five_rows(fake)
    _, log = load(extractor(ga4_client, FakeTime()), TRAFFIC_REPORT, MON)
    assert log.flags == ("timezone_mismatch",)


def test_pacing_slows_down_when_hourly_tokens_run_low(fake, ga4_client):
    five_rows(fake)
    fake.tokens_per_hour = 1_010  # 1,000 left after the first request, 990, 980
    time = FakeTime()
    ext = extractor(ga4_client, time, pacer=QuotaPacer(low_water=2_000, max_pause_seconds=10))
    load(ext, TRAFFIC_REPORT, MON)
    assert time.sleeps == pytest.approx([5.0, 5.05, 5.1])
    assert ext.stats.lowest_quota["tokens_per_hour"] == 980
    assert ext.stats.lowest_quota["tokens_per_day"] == 200_000 - 30


def test_chosen_key_events_and_the_event_filter(fake, ga4_client):
    fake.traffic(MON, "a", "b", "c", "10", "5", "0", **{"keyEvents:purchase": "3.0"})
    fake.event(MON, "form_start", "a", "b", "c", "4")
    fake.event(MON, "page_view", "a", "b", "c", "90")
    source = Ga4Source(id="site", property_id="123", key_events=["purchase"])
    ext = extractor(ga4_client, FakeTime(), source=source)
    traffic, _ = load(ext, TRAFFIC_REPORT, MON)
    events, _ = load(ext, EVENTS_REPORT, MON)
    assert [m.name for m in fake.requests[0].metrics] == [
        "sessions",
        "engagedSessions",
        "keyEvents:purchase",
    ]
    assert traffic["key_events"].tolist() == [3.0]
    # Only the events the plan's measures name are asked for.
    assert list(fake.requests[1].dimension_filter.filter.in_list_filter.values) == ["form_start"]
    assert events[["event_name", "event_count"]].values.tolist() == [["form_start", 4]]


def test_plaintext_endpoints_are_for_loopback_only():
    with (
        pytest.raises(Ga4ConfigError, match="loopback"),
        open_client(credentials_file=None, endpoint="203.0.113.7:443"),
    ):
        pass


def test_an_unreadable_key_file_is_reported_without_its_path(tmp_path):
    secret = tmp_path / "very-secret-key.json"
    secret.write_text("{not json", encoding="utf-8")
    with pytest.raises(Ga4ConfigError) as caught, open_client(credentials_file=str(secret)):
        pass
    assert "very-secret-key" not in str(caught.value)
