"""One alert step: judge the scores, record decisions and queue them, deliver what is due."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import Channel, redact, send_with_retry
from kpi_pipeline.alerts.model import Alert, AlertKind
from kpi_pipeline.alerts.rules import evaluate
from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.warehouse.engine import Warehouse


@dataclass
class AlertRunSummary:
    alerts: list[Alert] = field(default_factory=list)  # decided by this run
    held: int = 0
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, channel)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (+ redacted error)


def run_alerts(
    warehouse: Warehouse,
    scores: pd.DataFrame,
    config: AlertsConfig,
    channels: Sequence[Channel],
    now: dt.datetime,
    deadlines: Mapping[str, dt.date] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertRunSummary:
    """Evaluate, record (state and queue in one transaction), then deliver every queued alert
    — this run's and any an earlier run failed to deliver — on the active channels."""
    store.ensure_tables(warehouse)
    evaluation = evaluate(scores, store.read_state(warehouse), config, now, deadlines)
    by_name = {channel.name: channel for channel in channels}
    store.record(warehouse, evaluation, by_name, now)
    summary = AlertRunSummary(alerts=evaluation.alerts, held=evaluation.held)
    for alert, name in store.undelivered(warehouse, by_name):
        result = send_with_retry(
            by_name[name], alert, config.retries, config.backoff_seconds, sleep
        )
        store.mark(warehouse, alert.alert_id, name, result, now)
        if result.delivered:
            summary.delivered.append((alert.alert_id, name))
        else:
            summary.failed.append((alert.alert_id, name, result.error or "unknown error"))
    return summary


def failure_alert(job_name: str, run_id: str, errors: Sequence[str], now: dt.datetime) -> Alert:
    """A notice that the pipeline itself failed: which job, which run, what went wrong."""
    detail = f"job {job_name}, run {run_id}: " + ("; ".join(errors) or "no step error recorded")
    return Alert(
        alert_id=f"run_failure:{run_id}",
        kind=AlertKind.PIPELINE_FAILURE,
        kpi_id="",
        kpi_label="",
        kpi_kind="",
        objective_title="",
        grain="",
        segment_type="",
        segment="",
        period_start=now.date().isoformat(),
        period_label="",
        previous_status=None,
        status="failed",
        detail=detail,
    )


def notify_failure(
    channels: Sequence[Channel],
    alert: Alert,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Send a failure notice on every channel: {channel: None if delivered else error}."""
    secrets = [s for channel in channels for s in channel.secrets]
    outcome: dict[str, str | None] = {}
    for channel in channels:
        clean = Alert(**{**alert.__dict__, "detail": redact(alert.detail or "", secrets)})
        result = send_with_retry(channel, clean, attempts, backoff_seconds, sleep)
        outcome[channel.name] = None if result.delivered else result.error
    return outcome
