"""Telling people a pipeline run failed, once per run, whoever started it.

Three paths reach a failed run: the sensor of the code location that launched it (schedule,
UI, `dagster job launch`), a sensor watching runs the CLI executed in process inside a
persistent Dagster instance, and the CLI itself when no daemon watches. Each goes through
the alert store: the notice is queued under `run_failure:<run id>` (nothing is added when it
is there already) and only deliveries not yet made are sent, so a run is announced once
whichever path gets there first, and a notice a channel could not take is retried by later
runs like any alert.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import Channel, redact
from kpi_pipeline.alerts.model import Alert, AlertKind
from kpi_pipeline.alerts.run import AlertRunSummary, deliver
from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.warehouse.engine import Warehouse

RUN_FAILURE_PREFIX = "run_failure:"


def failure_alert_id(run_id: str) -> str:
    return f"{RUN_FAILURE_PREFIX}{run_id}"


def failure_alert(
    job_name: str,
    run_id: str,
    errors: Sequence[str],
    now: dt.datetime,
    secrets: Sequence[str] = (),
) -> Alert:
    """A notice that the pipeline itself failed: which job, which run, what went wrong
    (secrets of the channels redacted from the errors)."""
    detail = f"job {job_name}, run {run_id}: " + ("; ".join(errors) or "no step error recorded")
    return Alert(
        alert_id=failure_alert_id(run_id),
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
        detail=redact(detail, secrets),
    )


def step_error_lines(step_errors: Mapping[str, str]) -> list[str]:
    """`step <key> failed: <first line of its error>` for each failed step."""
    lines = []
    for step, message in step_errors.items():
        first = (message.strip().splitlines() or [""])[0]
        lines.append(f"step {step} failed: {first}")
    return lines


def notify_run_failure(
    warehouse: Warehouse,
    alert: Alert,
    channels: Sequence[Channel],
    config: AlertsConfig,
    now: dt.datetime,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Queue the notice (once per run) and send what is not delivered yet.

    Returns {channel: outcome}: `delivered`, `already delivered`, `given up` (an earlier
    path gave it up), or `failed: <error>` (kept for the next run unless given up).
    """
    store.ensure_tables(warehouse)
    by_name = {channel.name: channel for channel in channels}
    store.queue_once(warehouse, alert, by_name, now)
    pending = store.undelivered(warehouse, by_name, alert_id=alert.alert_id)
    summary = deliver(warehouse, pending, by_name, config, now, AlertRunSummary(), sleep=sleep)
    outcome = {name: "delivered" for _, name in summary.delivered}
    for _, name, error in summary.failed:
        outcome[name] = f"failed: {error}"
    for _, name, reason in summary.given_up:
        outcome[name] += f" ({reason})"
    # Rows the CLI queued for a channel this process cannot send on would wait forever.
    store.give_up_inactive(warehouse, alert.alert_id, by_name, now)
    statuses = store.delivery_statuses(warehouse, alert.alert_id)
    for name in by_name:
        if name not in outcome:
            delivered = statuses.get(name) == "delivered"
            outcome[name] = "already delivered" if delivered else "given up"
    return outcome


def declared_channels(config: AlertsConfig) -> list[str]:
    """The channel names the plan declares, whether or not their settings are present."""
    return [
        name for name, declared in (("slack", config.slack), ("email", config.email)) if declared
    ]


def queue_run_failure(
    warehouse: Warehouse, alert: Alert, config: AlertsConfig, now: dt.datetime
) -> list[str]:
    """Queue the notice on every declared channel without sending: the daemon's sensor
    sends it (`is_queued` tells the sensor the run is this plan's), else the next run's
    alert step. Returns the channels queued (none when it was queued already)."""
    store.ensure_tables(warehouse)
    return store.queue_once(warehouse, alert, declared_channels(config), now)


def is_queued(warehouse: Warehouse, run_id: str) -> bool:
    """Whether this plan's alert store holds a notice for the run."""
    store.ensure_tables(warehouse)
    return bool(store.delivery_statuses(warehouse, failure_alert_id(run_id)))
