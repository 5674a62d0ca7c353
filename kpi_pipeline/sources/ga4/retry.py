"""Retries and pacing for GA4 calls, with time injectable so tests never sleep.

The generated client retries nothing on `run_report`. Here: quota and server errors are
retried with google-api-core's exponential back-off with jitter, bounded in attempts and
total time; an exhausted daily quota stops at once (retrying cannot help before tomorrow);
a rejected request (`InvalidArgument`, permissions) is never retried and keeps its message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import exponential_sleep_generator

from kpi_pipeline.sources.ga4.parsing import QuotaSnapshot

T = TypeVar("T")

# Transient server-side failures worth another try.
TRANSIENT_ERRORS = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError)


class Ga4Error(RuntimeError):
    """A GA4 extraction that cannot go on."""


class Ga4RequestRejected(Ga4Error):
    """The API refused the request itself (e.g. INVALID_ARGUMENT): retrying cannot help."""


class Ga4RetriesExhausted(Ga4Error):
    """Transient errors went on past the attempt or time budget."""


class DailyQuotaExhausted(Ga4Error):
    """The property's daily tokens are spent: stop cleanly and resume tomorrow."""


class QuotaKind(StrEnum):
    DAILY = "daily"
    HOURLY = "hourly"
    CONCURRENT = "concurrent"
    OTHER = "other"


def classify_quota_error(message: str) -> QuotaKind:
    """Which quota a RESOURCE_EXHAUSTED message names ("Exhausted ... per hour.", ...)."""
    text = message.lower()
    if "per day" in text or "daily" in text:
        return QuotaKind.DAILY
    if "per hour" in text or "hourly" in text:
        return QuotaKind.HOURLY
    if "concurrent" in text:
        return QuotaKind.CONCURRENT
    return QuotaKind.OTHER


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off bounds. Delays are drawn in [0, d] with d = initial x multiplier^n <= maximum."""

    initial_seconds: float = 1.0
    maximum_seconds: float = 60.0
    multiplier: float = 2.0
    max_attempts: int = 6
    deadline_seconds: float = 900.0
    hourly_quota_wait_seconds: float = 300.0  # wait at least this long for an hourly quota


@dataclass(frozen=True)
class Retried:
    """One retry, as reported to `on_retry` (for logs and metadata)."""

    attempt: int
    error: str
    delay_seconds: float


def call_with_retry(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[Retried], None] | None = None,
) -> T:
    """`call()`, retried on quota and transient errors within `policy`'s bounds."""
    started = clock()
    delays = exponential_sleep_generator(
        policy.initial_seconds, policy.maximum_seconds, policy.multiplier
    )
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except gexc.TooManyRequests as exc:  # ResourceExhausted (gRPC) is a subclass
            kind = classify_quota_error(exc.message or str(exc))
            if kind is QuotaKind.DAILY:
                raise DailyQuotaExhausted(exc.message or str(exc)) from exc
            delay = next(delays)
            if kind is QuotaKind.HOURLY:
                delay = max(delay, policy.hourly_quota_wait_seconds)
            error: Exception = exc
        except TRANSIENT_ERRORS as exc:
            delay = next(delays)
            error = exc
        except gexc.GoogleAPICallError as exc:
            raise Ga4RequestRejected(f"GA4 rejected the request: {exc.message or exc}") from exc
        elapsed = clock() - started
        if attempt >= policy.max_attempts or elapsed + delay > policy.deadline_seconds:
            raise Ga4RetriesExhausted(
                f"gave up after {attempt} attempt(s) in {elapsed:.0f}s: {error}"
            ) from error
        if on_retry is not None:
            on_retry(Retried(attempt=attempt, error=str(error), delay_seconds=delay))
        sleep(delay)


@dataclass(frozen=True)
class QuotaPacer:
    """Slow down before the hourly tokens run out instead of running into the wall.

    Below `low_water` tokens left this hour, each request is followed by a pause growing
    linearly to `max_pause_seconds` as the remaining tokens approach zero.
    """

    low_water: int = 4_000
    max_pause_seconds: float = 60.0

    def pause_after(self, quota: QuotaSnapshot) -> float:
        remaining = [
            r for r in (quota.tokens_per_hour, quota.tokens_per_project_per_hour) if r is not None
        ]
        if not remaining or self.low_water <= 0:
            return 0.0
        lowest = min(remaining)
        if lowest >= self.low_water:
            return 0.0
        return self.max_pause_seconds * (1 - max(lowest, 0) / self.low_water)
