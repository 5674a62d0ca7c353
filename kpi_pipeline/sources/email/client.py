"""A small JSON-over-HTTPS client shared by the email platforms, with retries done right.

- HTTP 429: wait what `Retry-After` says (seconds or an HTTP date), else back off; bounded.
- HTTP 5xx and connection errors: exponential back-off, bounded in attempts.
- HTTP 401/403: `EmailAuthError` at once, never retried (a wrong key stays wrong).
- Other 4xx: `EmailRequestRejected` at once, with the platform's own explanation.

The API key travels in a header only. Error messages never carry headers, and any text the
platform sends back is scrubbed of the key before it reaches an exception or a log.
Time is injected (`sleep`), so tests never wait for real.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

USER_AGENT = "kpi-pipeline (email platforms)"


class EmailApiError(RuntimeError):
    """An email platform call that cannot succeed."""


class EmailAuthError(EmailApiError):
    """The platform refused the API key (401) or its permissions (403). Never retried."""


class EmailRequestRejected(EmailApiError):
    """The platform refused the request itself (4xx other than 401/403/429)."""


class EmailRetriesExhausted(EmailApiError):
    """Rate limits or server errors went on past the retry budget."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` tries, waits doubling up to `maximum_seconds`."""

    max_attempts: int = 6
    initial_seconds: float = 1.0
    maximum_seconds: float = 60.0
    # A Retry-After longer than this is not waited out: the run fails and says so.
    max_retry_after_seconds: float = 300.0

    def backoff(self, retry_number: int) -> float:
        """Wait before retry `retry_number` (1-based): 1, 2, 4, ... seconds, capped."""
        return min(self.maximum_seconds, self.initial_seconds * 2 ** (retry_number - 1))


@dataclass(frozen=True)
class Retry:
    """One retried call: why (status or error) and how long it waited."""

    reason: str
    waited_seconds: float


@dataclass
class CallStats:
    requests: int = 0
    retries: list[Retry] = field(default_factory=list)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


class JsonApiClient:
    """JSON requests against one API root, authenticated by headers built from `secret`."""

    def __init__(
        self,
        base_url: str,
        *,
        platform: str,
        secret: str,
        auth_headers: Mapping[str, str],
        extra_headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout_seconds: float = 30.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.platform = platform
        self._secret = secret
        self._headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **(extra_headers or {}),
            **auth_headers,
        }
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._timeout = timeout_seconds
        self._session = session or requests.Session()
        self.stats = CallStats()

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"JsonApiClient({self.platform}, {self.base_url})"

    def url(self, path: str) -> str:
        """Absolute URL of `path` (a full URL, e.g. a `links.next`, is kept as it is)."""
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(
        self, path: str, body: Mapping[str, Any], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.request("POST", path, params=params, body=body)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call, retried on 429, 5xx and connection errors within the policy."""
        url = self.url(path)
        where = f"{self.platform} {method} {_without_query(url)}"
        for attempt in range(1, self.retry.max_attempts + 1):
            self.stats.requests += 1
            try:
                response = self._session.request(
                    method,
                    url,
                    params=dict(params or {}),
                    json=dict(body) if body is not None else None,
                    headers={**self._headers, **(headers or {})},
                    timeout=self._timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = f"{type(exc).__name__}"
                self._wait_or_give_up(attempt, reason, self.retry.backoff(attempt), where)
                continue
            status = response.status_code
            if status < 400:
                return self._json(response, where)
            if status in (401, 403):
                what = "the API key was refused" if status == 401 else "the API key lacks access"
                raise EmailAuthError(
                    f"{where}: HTTP {status}, {what}{self._detail(response)}. Check the key in "
                    "the environment variable the plan names; auth errors are not retried."
                )
            if status == 429:
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait > self.retry.max_retry_after_seconds:
                    raise EmailRetriesExhausted(
                        f"{where}: rate limited, and Retry-After asks for {wait:.0f} s, more "
                        f"than the {self.retry.max_retry_after_seconds:.0f} s this run waits"
                    )
                delay = wait if wait is not None else self.retry.backoff(attempt)
                self._wait_or_give_up(attempt, "HTTP 429", delay, where)
                continue
            if status >= 500:
                self._wait_or_give_up(attempt, f"HTTP {status}", self.retry.backoff(attempt), where)
                continue
            raise EmailRequestRejected(f"{where}: HTTP {status}{self._detail(response)}")
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _wait_or_give_up(self, attempt: int, reason: str, delay: float, where: str) -> None:
        if attempt >= self.retry.max_attempts:
            raise EmailRetriesExhausted(
                f"{where}: still failing after {attempt} attempts (last: {reason})"
            )
        self.stats.retries.append(Retry(reason, delay))
        self._sleep(delay)

    def _json(self, response: requests.Response, where: str) -> dict[str, Any]:
        if not response.content:
            return {}
        try:
            payload = response.json()
        except ValueError as exc:
            raise EmailApiError(f"{where}: the response is not JSON") from exc
        if not isinstance(payload, dict):
            raise EmailApiError(f"{where}: expected a JSON object, got {type(payload).__name__}")
        return payload

    def _detail(self, response: requests.Response) -> str:
        """The platform's own explanation (Mailchimp `detail`, JSON:API `errors`), scrubbed."""
        try:
            payload = response.json()
        except ValueError:
            return ""
        texts: list[str] = []
        if isinstance(payload, dict):
            for key in ("title", "detail"):
                if isinstance(payload.get(key), str):
                    texts.append(payload[key])
            for error in payload.get("errors") or []:
                if isinstance(error, dict):
                    texts += [str(error[k]) for k in ("title", "detail") if error.get(k)]
        text = " — ".join(dict.fromkeys(texts))[:300]
        return f" ({self.redact(text)})" if text else ""

    def redact(self, text: str) -> str:
        """`text` with the API key (and its Mailchimp data-centre-less part) masked."""
        for secret in {self._secret, self._secret.rsplit("-", 1)[0]}:
            if len(secret) >= 6:
                text = text.replace(secret, "***")
        return text


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
