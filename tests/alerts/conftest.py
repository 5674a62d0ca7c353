"""Real local servers for the alert channels, and a tiny plan whose weeks we script.

The Slack side is an `http.server` on 127.0.0.1 that answers like an incoming webhook
(200 `ok`) or, when told it is down, 500; the email side is an aiosmtpd server with AUTH
that accepts mail or, when down, answers 451. Both bind to loopback only.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from kpi_pipeline.alerts.channels import SmtpChannel
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days
from kpi_pipeline.warehouse.engine import read_frame_once

SLACK_TOKEN_PATH = "/services/T0KPI/B0ALERTS/s3cr3t-webhook-token"
SMTP_USER = "alerts@tiny.example"
SMTP_PASSWORD = "smtp-pa55-s3cret"


@dataclass
class SlackServer:
    url: str
    received: list[dict] = field(default_factory=list)  # payloads answered 200
    requests: int = 0
    down: bool = False
    # (status, body, headers) to answer instead of 200 `ok`, like Slack refusing a message
    # (400 `invalid_blocks`) or rate limiting (429 with Retry-After).
    answer: tuple[int, bytes, dict[str, str]] | None = None
    refused: list[dict] = field(default_factory=list)  # payloads answered with `answer`


@pytest.fixture
def slack_server():
    state = SlackServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests += 1
            if self.path != SLACK_TOKEN_PATH or state.down:
                self.send_response(500 if state.down else 404)
                self.end_headers()
                self.wfile.write(b"server_error")
                return
            if state.answer is not None:
                status, reply, headers = state.answer
                state.refused.append(json.loads(body))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                return
            state.received.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}{SLACK_TOKEN_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class SmtpServer:
    port: int
    received: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False
    raw: list[bytes] = field(default_factory=list)  # each message as it came over the wire
    refuse_with: str | None = None  # an SMTP reply to every DATA, e.g. "554 5.6.0 ..."

    async def handle_DATA(self, server, session, envelope):
        if self.down:
            return "451 4.3.0 mailbox temporarily unavailable"
        if self.refuse_with:
            return self.refuse_with
        self.raw.append(envelope.original_content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    state = SmtpServer(port=_free_port())

    def authenticator(server, session, envelope, mechanism, auth_data):
        login = (auth_data.login.decode(), auth_data.password.decode())
        state.logins.append(login)
        return AuthResult(success=login == (SMTP_USER, SMTP_PASSWORD))

    controller = Controller(
        state,
        hostname="127.0.0.1",
        port=state.port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield state
    controller.stop()


@pytest.fixture
def smtp_channel(smtp_server) -> SmtpChannel:
    """The email channel to the local SMTP server, logging in as the test user (no STARTTLS:
    the server is plaintext on loopback)."""
    return SmtpChannel(
        host="127.0.0.1",
        port=smtp_server.port,
        sender="kpi@tiny.example",
        recipients=("lead@tiny.example",),
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        starttls=False,
    )


ALERTS_SECTION = """\
alerts:
  slack: {{webhook_url_env: TEST_SLACK_WEBHOOK}}
  email:
    host_env: TEST_SMTP_HOST
    port_env: TEST_SMTP_PORT
    username_env: TEST_SMTP_USER
    password_env: TEST_SMTP_PASSWORD
    sender: kpi@tiny.example
    recipients: [lead@tiny.example, analyst@tiny.example]
    starttls: false
  rules:
    - {{grains: [week], statuses: [off_track], hold_hours: {hold_hours}}}
  retries: 3
  backoff_seconds: 0.01
"""

PLAN = """\
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
objectives:
  - id: sell
    title: Sell more online
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {{value: 0.02, as_of: 2026-01-01}}
        target: {{value: 0.03, by: 2026-12-31}}
        grains: [week]
        tolerance: 0.1
        min_denominator: 100
{alerts}"""

HEADER = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"
MONDAY_W02 = dt.date(2026, 1, 5)  # ISO week 2026-W02 runs Monday 5 to Sunday 11 January


@dataclass
class AlertProject:
    root: Path
    plan_path: Path
    warehouse_url: str
    instance: dg.DagsterInstance

    def write_week(self, monday: dt.date, daily: list[tuple[int, int]]) -> None:
        """One export file per week: (sessions, key events) for each day from Monday on."""
        rows = [
            f"{monday + dt.timedelta(days=i)},newsletter,email,news,/,desktop,{s},{s // 2},{k}"
            for i, (s, k) in enumerate(daily)
        ]
        path = self.root / "exports" / f"{monday}.csv"
        path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")

    def run(self, first: dt.date, last: dt.date):
        return run_days(
            self.plan_path, first, last, warehouse_url=self.warehouse_url, instance=self.instance
        )

    def read(self, sql: str):
        return read_frame_once(self.warehouse_url, sql, plan_id=load_plan(self.plan_path).plan_id)


def make_project(tmp_path: Path, hold_hours: int = 0, alerts: bool = True) -> AlertProject:
    section = ALERTS_SECTION.format(hold_hours=hold_hours) if alerts else ""
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN.format(alerts=section), encoding="utf-8")
    (tmp_path / "exports").mkdir()
    return AlertProject(
        tmp_path, plan_path, f"duckdb:///{tmp_path / 'kpi.duckdb'}", dg.DagsterInstance.ephemeral()
    )


@pytest.fixture
def channels_env(monkeypatch, slack_server, smtp_server):
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", slack_server.url)
    monkeypatch.setenv("TEST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TEST_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("TEST_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    return slack_server, smtp_server


@pytest.fixture
def project_factory(tmp_path, channels_env):
    """make_project(hold_hours=...) in this test's folder, channels configured."""
    return lambda **options: make_project(tmp_path, **options)


@pytest.fixture
def project(project_factory) -> AlertProject:
    return project_factory()


@pytest.fixture
def secrets() -> dict[str, str]:
    return {
        "slack_path": SLACK_TOKEN_PATH,
        "smtp_user": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
    }
