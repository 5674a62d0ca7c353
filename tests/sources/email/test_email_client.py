"""The shared HTTP client against a local server: pages, rate limits, server errors, bad keys.

Sleeping is injected: each test reads the waits the client asked for instead of waiting.
"""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import MAILCHIMP_KEY, FakeEmailApi, mailchimp_report, serve_mailchimp

from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.sources.email import (
    EmailApiError,
    EmailAuthError,
    EmailRequestRejected,
    EmailRetriesExhausted,
    RetryPolicy,
)
from kpi_pipeline.sources.email.client import parse_retry_after
from kpi_pipeline.sources.email.mailchimp import mailchimp_base_url, mailchimp_client, paginate


def _reports(n: int) -> list[dict]:
    return [
        mailchimp_report(
            f"c{i}",
            f"Campaign {i}",
            f"2026-01-0{i}T15:00:00+00:00",
            sent=100,
            hard=1,
            soft=2,
            unique_opens=40,
            proxy_excluded_unique_opens=30,
            subscriber_clicks=5,
            unsubscribed=1,
        )
        for i in range(1, n + 1)
    ]


def _client(api: FakeEmailApi, sleeps: list[float], **retry):
    source = EmailSource(id="mc", platform="mailchimp", base_url=f"{api.base}/3.0")
    return mailchimp_client(source, MAILCHIMP_KEY, retry=RetryPolicy(**retry), sleep=sleeps.append)


def test_pagination_reads_every_page_by_count_and_offset(fake_api):
    # 5 reports, 2 per page: offsets 0, 2, 4, and no request past total_items.
    serve_mailchimp(fake_api, _reports(5), [])
    client = _client(fake_api, [])
    ids = [r["id"] for r in paginate(client, "reports", "reports", {}, page_size=2)]
    assert ids == ["c1", "c2", "c3", "c4", "c5"]
    assert [c.query["offset"] for c in fake_api.calls("/3.0/reports")] == ["0", "2", "4"]
    assert {c.query["count"] for c in fake_api.calls("/3.0/reports")} == {"2"}


def test_429_waits_what_retry_after_says_then_succeeds(fake_api):
    serve_mailchimp(fake_api, _reports(1), [])
    fake_api.fail_next(
        "GET", "/3.0/reports", (429, {"Retry-After": "7"}, {"title": "Too Many Requests"})
    )
    sleeps: list[float] = []
    client = _client(fake_api, sleeps)
    assert client.get("reports")["total_items"] == 1
    assert sleeps == [7.0]  # the server's figure, not the back-off's 1 s
    assert [r.reason for r in client.stats.retries] == ["HTTP 429"]
    assert client.stats.requests == 2


def test_429_without_retry_after_backs_off_exponentially(fake_api):
    serve_mailchimp(fake_api, _reports(1), [])
    fake_api.fail_next("GET", "/3.0/reports", *[(429, {}, {"title": "Too Many Requests"})] * 3)
    sleeps: list[float] = []
    _client(fake_api, sleeps).get("reports")
    assert sleeps == [1.0, 2.0, 4.0]


def test_retry_after_longer_than_the_run_waits_fails_clearly(fake_api):
    # An hour-long penalty is not slept through in a daily job: the run says why it stopped.
    fake_api.fail_next("GET", "/3.0/reports", (429, {"Retry-After": "3600"}, {}))
    sleeps: list[float] = []
    with pytest.raises(EmailRetriesExhausted, match="Retry-After asks for 3600 s"):
        _client(fake_api, sleeps, max_retry_after_seconds=300).get("reports")
    assert sleeps == []


def test_500_then_success(fake_api):
    serve_mailchimp(fake_api, _reports(2), [])
    fake_api.fail_next("GET", "/3.0/reports", (500, {}, {"title": "Internal Server Error"}))
    sleeps: list[float] = []
    client = _client(fake_api, sleeps)
    assert len(client.get("reports")["reports"]) == 2
    assert sleeps == [1.0]
    assert [r.reason for r in client.stats.retries] == ["HTTP 500"]


def test_5xx_retries_are_bounded(fake_api):
    # 4 attempts: 3 waits (1, 2, 4 s capped at 3 s), then a clear error naming the last status.
    fake_api.fail_next("GET", "/3.0/reports", *[(503, {}, {})] * 10)
    sleeps: list[float] = []
    with pytest.raises(EmailRetriesExhausted, match=r"after 4 attempts \(last: HTTP 503\)"):
        _client(fake_api, sleeps, max_attempts=4, maximum_seconds=3).get("reports")
    assert sleeps == [1.0, 2.0, 3.0]
    assert len(fake_api.calls("/3.0/reports")) == 4


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_clear_never_retried_and_never_show_the_key(fake_api, status):
    # Mailchimp echoes nothing secret, but a proxy might: the key is scrubbed from any text.
    detail = f"Your API key may be invalid: {MAILCHIMP_KEY}"
    fake_api.fail_next(
        "GET", "/3.0/reports", (status, {}, {"title": "API Key Invalid", "detail": detail})
    )
    sleeps: list[float] = []
    with pytest.raises(EmailAuthError) as caught:
        _client(fake_api, sleeps).get("reports")
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert "not retried" in message and "API Key Invalid" in message
    assert MAILCHIMP_KEY not in message
    assert MAILCHIMP_KEY.rsplit("-", 1)[0] not in message
    assert len(fake_api.calls("/3.0/reports")) == 1 and sleeps == []


def test_key_travels_in_the_authorization_header_only(fake_api):
    serve_mailchimp(fake_api, _reports(1), [])
    client = _client(fake_api, [])
    client.get("reports", {"count": 1})
    (call,) = fake_api.calls("/3.0/reports")
    assert call.headers["authorization"].startswith("Basic ")
    assert MAILCHIMP_KEY not in str(call.query)
    assert MAILCHIMP_KEY not in repr(client)


def test_other_4xx_is_rejected_at_once_with_the_platform_reason(fake_api):
    fake_api.fail_next(
        "GET", "/3.0/reports", (400, {}, {"title": "Invalid Resource", "detail": "bad count"})
    )
    with pytest.raises(EmailRequestRejected, match=r"HTTP 400 \(Invalid Resource — bad count\)"):
        _client(fake_api, []).get("reports")
    assert len(fake_api.calls("/3.0/reports")) == 1


def test_connection_refused_is_retried_then_reported(fake_api):
    # Nothing listens on the port once the server is gone: bounded retries, then an error.
    source = EmailSource(id="mc", platform="mailchimp", base_url="http://127.0.0.1:9/3.0")
    sleeps: list[float] = []
    client = mailchimp_client(
        source, MAILCHIMP_KEY, retry=RetryPolicy(max_attempts=2), sleep=sleeps.append
    )
    with pytest.raises(EmailRetriesExhausted, match="ConnectionError"):
        client.get("reports")
    assert sleeps == [1.0]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),  # delta-seconds, the usual form
        ("0", 0.0),
        ("Thu, 26 Nov 2026 06:00:30 GMT", 30.0),  # HTTP date, 30 s after "now"
        ("Thu, 26 Nov 2026 05:59:00 GMT", 0.0),  # a date already past: no wait
        ("soon", None),  # unreadable: the client falls back to its back-off
        (None, None),
    ],
)
def test_parse_retry_after(header, seconds):
    now = dt.datetime(2026, 11, 26, 6, 0, tzinfo=dt.UTC)
    assert parse_retry_after(header, now) == seconds


def test_mailchimp_host_comes_from_the_key_data_centre():
    template = "https://{dc}.api.mailchimp.com/3.0"
    assert mailchimp_base_url(template, "abc-us21") == "https://us21.api.mailchimp.com/3.0"
    assert mailchimp_base_url("http://127.0.0.1:1/3.0", "abc-us21") == "http://127.0.0.1:1/3.0"
    with pytest.raises(EmailApiError, match="no data-centre suffix") as caught:
        mailchimp_base_url(template, "keywithoutsuffix")
    assert "keywithoutsuffix" not in str(caught.value)
