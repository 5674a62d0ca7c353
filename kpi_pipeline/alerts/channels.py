"""Channels: a Slack incoming webhook and SMTP email, each sent with retries and backoff.

Secrets (the webhook URL, the SMTP password) never appear in a repr, an error or a log:
`redact` replaces them in every message a failure produces.
"""

from __future__ import annotations

import json
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from kpi_pipeline.alerts.messages import email_message, slack_payload
from kpi_pipeline.alerts.model import Alert

REDACTED = "***"


class DeliveryError(RuntimeError):
    """A channel refused or could not take a message (text already redacted)."""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (and its URL-quoted form) replaced by ***."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret)}:
            text = text.replace(form, REDACTED)
    return text


class Channel(Protocol):
    name: str

    @property
    def secrets(self) -> tuple[str, ...]: ...

    def send(self, alert: Alert) -> None: ...


@dataclass(frozen=True)
class SlackWebhookChannel:
    """POSTs Block Kit JSON to an incoming webhook; Slack answers 200 `ok`."""

    webhook_url: str = field(repr=False)
    timeout_seconds: float = 10.0
    name: str = "slack"

    @property
    def secrets(self) -> tuple[str, ...]:
        # The whole URL, and its path alone (the token part), in case a library prints it.
        path = urllib.parse.urlsplit(self.webhook_url).path
        return tuple(s for s in (self.webhook_url, path if len(path) > 1 else "") if s)

    def send(self, alert: Alert) -> None:
        body = json.dumps(slack_payload(alert)).encode("utf-8")
        request = urllib.request.Request(
            self.webhook_url,
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"slack webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(
                redact(f"slack webhook unreachable: {reason}", self.secrets)
            ) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"slack webhook answered HTTP {status}")


@dataclass(frozen=True)
class SmtpChannel:
    """Sends the alert as a plain-text + HTML email; logs in when a username is given."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout_seconds: float = 10.0
    name: str = "email"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()

    def send(self, alert: Alert) -> None:
        message = email_message(alert, self.sender, list(self.recipients))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            text = f"smtp {self.host}:{self.port} failed: {type(exc).__name__}: {exc}"
            raise DeliveryError(redact(text, self.secrets)) from None


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    error: str | None = None


def send_with_retry(
    channel: Channel,
    alert: Alert,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Try up to `attempts` times, waiting backoff, 2 x backoff, ... between tries."""
    error = None
    for attempt in range(1, attempts + 1):
        try:
            channel.send(alert)
        except Exception as exc:  # any failure of a channel is recorded, never raised here
            error = redact(str(exc) or type(exc).__name__, channel.secrets)
            if attempt < attempts:
                sleep(backoff_seconds * 2 ** (attempt - 1))
        else:
            return DeliveryResult(True, attempt)
    return DeliveryResult(False, attempts, error)
