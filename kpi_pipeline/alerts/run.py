"""One alert step: judge the scores, record decisions and queue them, deliver what is due."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import Channel, send_with_retry
from kpi_pipeline.alerts.model import Alert, KpiWording, with_current_wording
from kpi_pipeline.alerts.rules import evaluate
from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.warehouse.engine import Warehouse


@dataclass
class AlertRunSummary:
    alerts: list[Alert] = field(default_factory=list)  # decided by this run
    held: int = 0
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, channel)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (+ redacted error)
    # (alert_id, channel, why): failed in this run and never to be tried again.
    given_up: list[tuple[str, str, str]] = field(default_factory=list)


def plan_wording(plan: Plan) -> dict[str, KpiWording]:
    """Each KPI's current label, objective title and deadline, by KPI id."""
    return {
        kpi.id: KpiWording(kpi.label, objective.title, kpi.target.by.isoformat())
        for objective, kpi in plan.iter_kpis()
    }


def deliver(
    warehouse: Warehouse,
    pending: Sequence[store.Pending],
    channels: Mapping[str, Channel],
    config: AlertsConfig,
    now: dt.datetime,
    summary: AlertRunSummary,
    wording: Mapping[str, KpiWording] | None = None,
    give_up_after_runs: int = store.GIVE_UP_AFTER_RUNS,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertRunSummary:
    """Send each pending delivery, worded as the plan words it now, and log the outcome."""
    for item in pending:
        alert = with_current_wording(item.alert, wording or {})
        result = send_with_retry(
            channels[item.channel], alert, config.retries, config.backoff_seconds, sleep
        )
        outcome = store.mark(warehouse, item, alert, result, now, give_up_after_runs)
        if result.delivered:
            summary.delivered.append((alert.alert_id, item.channel))
            continue
        summary.failed.append((alert.alert_id, item.channel, result.error or "unknown error"))
        if outcome.given_up_reason:
            summary.given_up.append((alert.alert_id, item.channel, outcome.given_up_reason))
    return summary


def run_alerts(
    warehouse: Warehouse,
    scores: pd.DataFrame,
    config: AlertsConfig,
    channels: Sequence[Channel],
    now: dt.datetime,
    deadlines: Mapping[str, dt.date] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    wording: Mapping[str, KpiWording] | None = None,
    give_up_after_runs: int = store.GIVE_UP_AFTER_RUNS,
) -> AlertRunSummary:
    """Evaluate, record (state and queue in one transaction), then deliver every queued alert
    — this run's and any an earlier run failed to deliver and has not given up — on the
    active channels, each worded with the plan's current `wording`."""
    store.ensure_tables(warehouse)
    evaluation = evaluate(scores, store.read_state(warehouse), config, now, deadlines)
    by_name = {channel.name: channel for channel in channels}
    store.record(warehouse, evaluation, by_name, now)
    summary = AlertRunSummary(alerts=evaluation.alerts, held=evaluation.held)
    pending = store.undelivered(warehouse, by_name)
    return deliver(
        warehouse, pending, by_name, config, now, summary, wording, give_up_after_runs, sleep
    )
