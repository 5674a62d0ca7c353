"""Channels: a Slack incoming webhook and SMTP email, each sent with retries and backoff.

A refusal that retrying cannot fix is not retried: Slack's 4xx answers except 429 (the
message or the webhook is wrong) and SMTP's 5xx replies (permanent, RFC 5321 4.2.1). A 429,
a 5xx from Slack, a 4xx from SMTP or an unreachable server is retried, within the run and on
later runs (`store` bounds how many).

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kpi_pipeline.alerts.messages import email_message, slack_payload
from kpi_pipeline.alerts.model import Alert
from kpi_pipeline.plan.alerts import AlertsConfig

REDACTED = "***"


# Wait at most this long for a 429's Retry-After within a run; longer waits are left to the
# next run rather than holding the pipeline.
MAX_RETRY_AFTER_SECONDS = 30.0
# How much of a refusal's body to keep: Slack's reason (`invalid_blocks`) is a word or two.
BODY_EXCERPT_CHARS = 200


class DeliveryError(RuntimeError):
    """A channel refused or could not take a message (text already redacted).

    `retryable` is False when sending the same message again cannot succeed; `retry_after`
    is the server's requested wait in seconds (a 429's Retry-After), when it gave one.
    """

    def __init__(self, message: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def http_retryable(status: int) -> bool:
    """Only a 429 (rate limited) or a 5xx may succeed when sent again unchanged."""
    return status == 429 or status >= 500


def body_excerpt(body: bytes) -> str:
    """The start of a response body on one line, for the delivery log."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text[:BODY_EXCERPT_CHARS]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from Slack; the normal backoff applies


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
            excerpt = body_excerpt(exc.read() or b"")
            text = f"slack webhook answered HTTP {exc.code}" + (f": {excerpt}" if excerpt else "")
            raise DeliveryError(
                redact(text, self.secrets),
                retryable=http_retryable(exc.code),
                retry_after=_retry_after(exc.headers.get("Retry-After")),
            ) from None
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
            raise DeliveryError(redact(text, self.secrets), retryable=smtp_retryable(exc)) from None


def smtp_retryable(exc: BaseException) -> bool:
    """SMTP's 5xx replies are permanent (a refused login, sender or recipient); 4xx replies
    and lost connections are transient."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return any(code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code < 500
    return not isinstance(exc, smtplib.SMTPNotSupportedError)


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    error: str | None = None
    retryable: bool = True  # False: the channel refused it for good; never send it again


def send_with_retry(
    channel: Channel,
    alert: Alert,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryResult:
    """Try up to `attempts` times, waiting backoff, 2 x backoff, ... between tries (or the
    server's Retry-After when longer); stop at once when the refusal is not retryable, or
    when the server asks for a wait longer than `MAX_RETRY_AFTER_SECONDS`."""
    error = None
    for attempt in range(1, attempts + 1):
        try:
            channel.send(alert)
        except Exception as exc:  # any failure of a channel is recorded, never raised here
            error = redact(str(exc) or type(exc).__name__, channel.secrets)
            retryable = getattr(exc, "retryable", True)
            retry_after = getattr(exc, "retry_after", None)
            if not retryable:
                return DeliveryResult(False, attempt, error, retryable=False)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                return DeliveryResult(False, attempt, error)
            if attempt < attempts:
                sleep(max(backoff_seconds * 2 ** (attempt - 1), retry_after or 0.0))
        else:
            return DeliveryResult(True, attempt)
    return DeliveryResult(False, attempts, error)


def build_channels(
    config: AlertsConfig,
    slack_webhook_url: str | None = None,
    smtp_host: str | None = None,
    smtp_port: str | None = None,
    smtp_username: str | None = None,
    smtp_password: str | None = None,
) -> list[Channel]:
    """The plan's channels whose settings are present (a channel without them is off)."""
    result: list[Channel] = []
    if config.slack is not None and slack_webhook_url:
        result.append(SlackWebhookChannel(slack_webhook_url, config.timeout_seconds))
    if config.email is not None and smtp_host:
        result.append(
            SmtpChannel(
                host=smtp_host,
                port=int(smtp_port or 587),
                sender=config.email.sender,
                recipients=tuple(config.email.recipients),
                username=smtp_username or None,
                password=smtp_password or None,
                starttls=config.email.starttls,
                timeout_seconds=config.timeout_seconds,
            )
        )
    return result


def channels_from_environment(config: AlertsConfig, environ: Mapping[str, str]) -> list[Channel]:
    """`build_channels` with each setting read from the variable the plan names."""
    slack, email = config.slack, config.email
    return build_channels(
        config,
        slack_webhook_url=environ.get(slack.webhook_url_env) if slack else None,
        smtp_host=environ.get(email.host_env) if email else None,
        smtp_port=environ.get(email.port_env) if email else None,
        smtp_username=environ.get(email.username_env) if email else None,
        smtp_password=environ.get(email.password_env) if email else None,
    )
