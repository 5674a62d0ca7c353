"""Alerts in Dagster: an asset judging each run's scores, and sensors for failed runs.

Channel settings reach Dagster as `dg.EnvVar`s (the UI shows the variable's name, never the
webhook URL or the SMTP password); a channel whose variable is unset is left out, and the
alerts are still evaluated and recorded.

Failed runs reach people by three paths, each announcing a run once through the alert
store (`alerts/run_failures.py`):
- `notify_run_failure`: runs launched from this code location (schedule, UI, launch);
- `notify_cli_run_failure`: runs the CLI executed in process inside a persistent instance
  (`DAGSTER_HOME`). Such runs have no code location, so only a sensor that monitors all
  code locations sees them; it takes those whose notice the CLI queued in this plan's store;
- `notify_cli_run_failure_directly`: the CLI itself, when no daemon runs that sensor.
"""

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import dagster as dg
import sqlalchemy as sa

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import Channel, build_channels, channels_from_environment, redact
from kpi_pipeline.alerts.run import plan_wording, run_alerts
from kpi_pipeline.alerts.run_failures import (
    failure_alert,
    is_queued,
    notify_run_failure,
    queue_run_failure,
    step_error_lines,
)
from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.plan.loader import LoadedPlan, load_plan
from kpi_pipeline.warehouse.engine import DEFAULT_WAREHOUSE_URL, Warehouse, WarehouseBusyError

RUN_FAILURE_SENSOR = "notify_run_failure"
CLI_RUN_FAILURE_SENSOR = "notify_cli_run_failure"
# A sensor daemon whose last heartbeat is older than this is taken for stopped.
DAEMON_HEARTBEAT_FRESH_SECONDS = 120
# How long the CLI-run sensor waits for the CLI to queue its notice (the CLI does it right
# after the run ends), and for DuckDB's single writer slot, before giving up on a run.
QUEUE_WAIT_SECONDS = 20.0

T = TypeVar("T")


class AlertChannelsResource(dg.ConfigurableResource):
    """Where alerts go. Unset fields mean "no such channel"; secrets arrive as EnvVars."""

    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None

    def channels(self, config: AlertsConfig) -> list[Channel]:
        return build_channels(
            config,
            slack_webhook_url=self.slack_webhook_url,
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_username=self.smtp_username,
            smtp_password=self.smtp_password,
        )


def alert_channels_resource(
    config: AlertsConfig, environ: Mapping[str, str] | None = None
) -> AlertChannelsResource:
    """The resource for the plan's channels: an EnvVar for each variable that is set."""
    environ = os.environ if environ is None else environ

    def env(name: str) -> dg.EnvVar | None:
        return dg.EnvVar(name) if environ.get(name) else None

    settings: dict[str, dg.EnvVar | None] = {}
    if config.slack is not None:
        settings["slack_webhook_url"] = env(config.slack.webhook_url_env)
    if config.email is not None and environ.get(config.email.host_env):
        settings["smtp_host"] = env(config.email.host_env)
        settings["smtp_port"] = env(config.email.port_env)
        settings["smtp_username"] = env(config.email.username_env)
        settings["smtp_password"] = env(config.email.password_env)
    return AlertChannelsResource(**{k: v for k, v in settings.items() if v is not None})


def build_alert_assets(loaded: LoadedPlan) -> list[dg.AssetsDefinition]:
    config = loaded.plan.alerts
    deadlines = {kpi.id: kpi.target.by for _, kpi in loaded.plan.iter_kpis()}
    wording = plan_wording(loaded.plan)

    @dg.asset(
        key=table_key(store.ALERT_STATE),
        deps=[table_key(KPI_SCORES)],
        group_name="alerts",
        kinds={"python", "slack", "email"},
        description="Last status sent per KPI series and closed period; alerts when it slips.",
        metadata={"grain": store.ALERT_STATE.grain},
    )
    def alert_state(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        alert_channels: AlertChannelsResource,
    ):
        channels = alert_channels.channels(config)
        secrets = [s for channel in channels for s in channel.secrets]
        wh = warehouse.get()
        scores = wh.read_frame(f"select * from {wh.relation(KPI_SCORES)}")
        now = dt.datetime.now(dt.UTC)
        summary = run_alerts(wh, scores, config, channels, now, deadlines, wording=wording)
        for alert in summary.alerts:
            context.log.info(f"alert {alert.kind.value}: {alert.alert_id}")
        if not channels:
            context.log.info("no alert channel configured: alerts recorded, nothing sent")
        for alert_id, channel, reason in summary.given_up:
            # The notice people need: this alert will never arrive, and the channel is free.
            context.log.warning(
                f"alert {alert_id} given up on {channel}: {reason}; later alerts are sent as "
                "usual (marts.alert_deliveries keeps its last error)"
            )
        metadata = {
            "alerts_decided": len(summary.alerts),
            "periods_held": summary.held,
            "deliveries_sent": len(summary.delivered),
            "deliveries_failed": len(summary.failed),
            "deliveries_given_up": len(summary.given_up),
            "channels": dg.MetadataValue.json([channel.name for channel in channels]),
        }
        if summary.failed:
            given_up = {(a, c): reason for a, c, reason in summary.given_up}
            errors = [
                redact(f"{c} {a}: {e}", secrets)
                + (f" ({given_up[(a, c)]})" if (a, c) in given_up else " (kept for the next run)")
                for a, c, e in summary.failed
            ]
            raise dg.Failure(
                description=f"{len(summary.failed)} alert deliveries failed: " + "; ".join(errors),
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return [alert_state]


def step_errors(events: Iterable[dg.DagsterEvent]) -> dict[str, str]:
    """Failed step -> the first line of its error's innermost cause, without the
    `package.module.Class: ` prefix Dagster puts before a message."""
    errors: dict[str, str] = {}
    for event in events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error if event.step_failure_data else None
        cause = error.cause if error is not None and error.cause is not None else error
        lines = (cause.message.strip() if cause is not None else "").splitlines()
        first = lines[0] if lines else ""
        if cause is not None and f"{cause.cls_name}: " in first:
            first = first.split(f"{cause.cls_name}: ", 1)[1]
        errors[event.step_key or "?"] = first
    return errors


def _retry_while_busy(action: Callable[[], T], wait_seconds: float = QUEUE_WAIT_SECONDS) -> T:
    """`action()`, tried again while DuckDB's file is held by another process (a run
    finishing) for up to `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return action()
        except (WarehouseBusyError, sa.exc.OperationalError, sa.exc.DBAPIError) as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _with_warehouse(resource: WarehouseResource, action: Callable[[Warehouse], T]) -> T:
    """Open the warehouse for one action and release it (DuckDB: one writer at a time)."""

    def attempt() -> T:
        warehouse = Warehouse.from_url(resource.url, resource.plan_id)
        try:
            return action(warehouse)
        finally:
            warehouse.dispose()

    return _retry_while_busy(attempt)


def _log_outcome(log, run_id: str, outcome: Mapping[str, str]) -> None:
    for name, result in outcome.items():
        if result.startswith("failed"):
            log.error(f"run {run_id} failure notice not delivered to {name}: {result}")
        else:
            log.info(f"run {run_id} failure notice on {name}: {result}")


def build_alert_sensors(loaded: LoadedPlan) -> list[dg.SensorDefinition]:
    config = loaded.plan.alerts

    def notice(context: dg.RunFailureSensorContext, channels: list[Channel]):
        errors = step_error_lines(step_errors(context.get_step_failure_events()))
        if not errors:
            errors.append(context.failure_event.message or "run failed")
        run = context.dagster_run
        secrets = [s for channel in channels for s in channel.secrets]
        return failure_alert(run.job_name, run.run_id, errors, dt.datetime.now(dt.UTC), secrets)

    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        description="Tells the alert channels when a run launched from this code location "
        "(schedule, UI, launch) fails, naming the failed steps.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def notify_run_failure_sensor(
        context: dg.RunFailureSensorContext,
        alert_channels: AlertChannelsResource,
        warehouse: WarehouseResource,
    ):
        channels = alert_channels.channels(config)
        if not channels:
            context.log.info("no alert channel configured: run failure not sent")
            return
        alert = notice(context, channels)
        now = dt.datetime.now(dt.UTC)
        outcome = _with_warehouse(
            warehouse, lambda wh: notify_run_failure(wh, alert, channels, config, now)
        )
        _log_outcome(context.log, context.dagster_run.run_id, outcome)

    @dg.run_failure_sensor(
        name=CLI_RUN_FAILURE_SENSOR,
        description="Tells the alert channels when a `kpi-pipeline run` of this plan fails "
        "inside this Dagster instance (runs executed in process belong to no code location).",
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=True,
    )
    def notify_cli_run_failure_sensor(
        context: dg.RunFailureSensorContext,
        alert_channels: AlertChannelsResource,
        warehouse: WarehouseResource,
    ):
        run = context.dagster_run
        # Runs with a code location are `notify_run_failure`'s (here or in its own location).
        if run.remote_job_origin is not None or run.job_name != DAILY_JOB_NAME:
            return
        channels = alert_channels.channels(config)
        if not channels:
            context.log.info("no alert channel configured: run failure not sent")
            return

        def ours() -> bool:
            # The CLI queues its notice right after the run ends: wait for it a little,
            # opening the warehouse for each look (DuckDB lets one process write at a time).
            deadline = time.monotonic() + QUEUE_WAIT_SECONDS
            while not _with_warehouse(warehouse, lambda wh: is_queued(wh, run.run_id)):
                if time.monotonic() > deadline:
                    return False
                time.sleep(1.0)
            return True

        if not ours():
            context.log.info(f"run {run.run_id} is not this plan's (no notice queued): skipped")
            return
        alert = notice(context, channels)
        now = dt.datetime.now(dt.UTC)
        outcome = _with_warehouse(
            warehouse, lambda wh: notify_run_failure(wh, alert, channels, config, now)
        )
        _log_outcome(context.log, run.run_id, outcome)

    return [notify_run_failure_sensor, notify_cli_run_failure_sensor]


def sensor_daemon_watches(instance: dg.DagsterInstance | None) -> bool:
    """Whether a daemon runs this instance's sensors now, `notify_cli_run_failure` among
    them: then the CLI leaves the notice to it."""
    if instance is None or instance.is_ephemeral:
        return False
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import InstigatorStatus

    heartbeat = instance.get_daemon_heartbeats().get("SENSOR")
    if heartbeat is None or time.time() - heartbeat.timestamp > DAEMON_HEARTBEAT_FRESH_SECONDS:
        return False
    running = {InstigatorStatus.RUNNING, InstigatorStatus.DECLARED_IN_CODE}
    return any(
        state.name == CLI_RUN_FAILURE_SENSOR and state.status in running
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    )


def notify_cli_run_failure_directly(
    plan_path: str | Path,
    result: dg.ExecuteInProcessResult,
    warehouse_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """For the CLI, after a failed run: announce it on the plan's channels, or queue the
    notice for the daemon's sensor when one watches this instance. Returns lines for the
    person at the terminal; never raises (the run's own failure is the news)."""
    environ = os.environ if environ is None else environ
    secrets: list[str] = []
    try:
        loaded = load_plan(plan_path)
        config = loaded.plan.alerts
        channels = channels_from_environment(config, environ)
        url = warehouse_url or environ.get("KPI_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL
        resource = WarehouseResource(url=url, plan_id=loaded.plan_id)
        run = result.dagster_run
        errors = step_error_lines(step_errors(result.all_events)) or ["run failed"]
        secrets = [url, *(s for channel in channels for s in channel.secrets)]
        now = dt.datetime.now(dt.UTC)
        alert = failure_alert(run.job_name, run.run_id, errors, now, secrets)
        instance = dg.DagsterInstance.get() if environ.get("DAGSTER_HOME") else None
        if sensor_daemon_watches(instance):
            _with_warehouse(resource, lambda wh: queue_run_failure(wh, alert, config, now))
            return [f"alerts: run failure left to the daemon's {CLI_RUN_FAILURE_SENSOR} sensor"]
        if not channels:
            return []
        outcome = _with_warehouse(
            resource, lambda wh: notify_run_failure(wh, alert, channels, config, now)
        )
        return [f"alerts: run failure notice on {name}: {text}" for name, text in outcome.items()]
    except Exception as exc:  # a notice that cannot go out must not hide the run's failure
        return [
            redact(f"alerts: run failure notice not sent: {type(exc).__name__}: {exc}", secrets)
        ]
