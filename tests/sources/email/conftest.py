"""A local HTTP server (127.0.0.1, port 0) that answers like Mailchimp and Klaviyo.

Responses have the shape the platforms document (field names, nesting, pagination); the
numbers are small so tests can compute every expectation by hand. Each test can queue
failures (429, 500, 401, ...) in front of a path, and reads back every request received.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us6"
KLAVIYO_KEY = "pk_test_9f8e7d6c5b4a39281706"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Reply = tuple[int, dict[str, str], Any]
Handler = Callable[[Received, "FakeEmailApi"], Reply]


@dataclass
class FakeEmailApi:
    """Routes `(method, path)` to handlers; `fail_next` queues replies served first."""

    base: str = ""
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    queued: dict[tuple[str, str], deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    received: list[Received] = field(default_factory=list)
    # What the routes serve, read at each request: a test may change it between runs.
    data: dict[str, Any] = field(default_factory=dict)

    def fail_next(self, method: str, path: str, *replies: Reply) -> None:
        self.queued[(method, path)].extend(replies)

    def calls(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def handle(self, request: Received) -> Reply:
        self.received.append(request)
        key = (request.method, request.path)
        if self.queued[key]:
            return self.queued[key].popleft()
        handler = self.routes.get(key)
        if handler is None:
            return 404, {}, {"title": "Resource Not Found", "status": 404}
        return handler(request, self)


def _make_handler(api: FakeEmailApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Received(
                method=self.command,
                path=parts.path,
                query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            status, headers, body = api.handle(request)
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeEmailApi]:
    api = FakeEmailApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(api))
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- Mailchimp --------------------------------------------------------------------------


def mailchimp_report(
    campaign_id: str,
    title: str,
    send_time: str,
    *,
    sent: int,
    hard: int,
    soft: int,
    unique_opens: int,
    proxy_excluded_unique_opens: int | None,
    subscriber_clicks: int,
    unsubscribed: int,
    list_id: str = "a1b2c3d4e5",
) -> dict[str, Any]:
    """A campaign report as `GET /3.0/reports` returns it (fields the pipeline asks for)."""
    delivered = sent - hard - soft
    opens: dict[str, Any] = {
        "opens_total": unique_opens * 2,
        "unique_opens": unique_opens,
        "open_rate": unique_opens / delivered if delivered else 0,
        "last_open": "2026-01-13T10:00:00+00:00",
    }
    if proxy_excluded_unique_opens is not None:
        opens |= {
            "proxy_excluded_opens": proxy_excluded_unique_opens * 2,
            "proxy_excluded_unique_opens": proxy_excluded_unique_opens,
            "proxy_excluded_open_rate": proxy_excluded_unique_opens / delivered,
        }
    return {
        "id": campaign_id,
        "campaign_title": title,
        "type": "regular",
        "list_id": list_id,
        "list_is_active": True,
        "list_name": "Northwind customers",
        "subject_line": title,
        "emails_sent": sent,
        "abuse_reports": 0,
        "unsubscribed": unsubscribed,
        "send_time": send_time,
        "bounces": {"hard_bounces": hard, "soft_bounces": soft, "syntax_errors": 0},
        "forwards": {"forwards_count": 0, "forwards_opens": 0},
        "opens": opens,
        "clicks": {
            "clicks_total": subscriber_clicks * 3,
            "unique_clicks": subscriber_clicks + 7,  # per link: more than the clickers
            "unique_subscriber_clicks": subscriber_clicks,
            "click_rate": subscriber_clicks / delivered if delivered else 0,
            "last_click": "2026-01-13T10:00:00+00:00",
        },
    }


def mailchimp_campaign(campaign_id: str, google_analytics: str) -> dict[str, Any]:
    return {"id": campaign_id, "tracking": {"google_analytics": google_analytics}}


def _offset_page(items: list[dict], key: str, request: Received) -> Reply:
    count = int(request.query.get("count", 10))
    offset = int(request.query.get("offset", 0))
    return 200, {}, {key: items[offset : offset + count], "total_items": len(items)}


def _in_window(items: list[dict], request: Received) -> list[dict]:
    """Mailchimp's since_send_time / before_send_time filter (ISO strings in UTC)."""
    since = request.query.get("since_send_time", "")
    before = request.query.get("before_send_time", "9999")
    return [i for i in items if since <= i["send_time"] < before]


def serve_mailchimp(
    api: FakeEmailApi,
    reports: list[dict],
    campaigns: list[dict],
    activity: dict[str, list[dict]] | None = None,
) -> None:
    """Install Mailchimp's reports, campaigns and list activity routes under /3.0."""
    api.data["reports"] = reports
    send_times = {r["id"]: r["send_time"] for r in reports}

    def reports_route(request: Received, api: FakeEmailApi) -> Reply:
        return _offset_page(_in_window(api.data["reports"], request), "reports", request)

    def campaigns_route(request: Received, _: FakeEmailApi) -> Reply:
        timed = [{**c, "send_time": send_times.get(c["id"], "")} for c in campaigns]
        kept = [
            {k: v for k, v in c.items() if k != "send_time"} for c in _in_window(timed, request)
        ]
        return _offset_page(kept, "campaigns", request)

    api.routes[("GET", "/3.0/reports")] = reports_route
    api.routes[("GET", "/3.0/campaigns")] = campaigns_route
    for list_id, days in (activity or {}).items():

        def activity_route(request: Received, _: FakeEmailApi, days=days, list_id=list_id):
            status, headers, body = _offset_page(days, "activity", request)
            return status, headers, {**body, "list_id": list_id}

        api.routes[("GET", f"/3.0/lists/{list_id}/activity")] = activity_route


# -- Klaviyo ----------------------------------------------------------------------------


def serve_klaviyo(
    api: FakeEmailApi, campaigns: list[dict], results: list[dict], page_size: int = 2
) -> None:
    """Install Klaviyo's campaigns (cursor pages) and campaign-values-reports routes."""

    def cursor_page(items: list[dict], request: Received, path: str) -> tuple[list, str | None]:
        start = int(request.query.get("page[cursor]", 0))
        end = start + page_size
        nxt = f"{api.base}{path}?page%5Bcursor%5D={end}" if end < len(items) else None
        return items[start:end], nxt

    def campaigns_route(request: Received, _: FakeEmailApi) -> Reply:
        page, nxt = cursor_page(campaigns, request, "/api/campaigns")
        return 200, {}, {"data": page, "links": {"self": "", "next": nxt, "prev": None}}

    def values_route(request: Received, _: FakeEmailApi) -> Reply:
        page, nxt = cursor_page(results, request, "/api/campaign-values-reports")
        return (
            200,
            {},
            {
                "data": {
                    "type": "campaign-values-report",
                    "id": "report-1",
                    "attributes": {"results": page},
                    "links": {"self": ""},
                },
                "links": {"self": "", "next": nxt, "prev": None},
            },
        )

    api.routes[("GET", "/api/campaigns")] = campaigns_route
    api.routes[("POST", "/api/campaign-values-reports")] = values_route
