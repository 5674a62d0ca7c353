"""Alerts in Dagster: an asset judging each run's scores, and a sensor for failed runs.

Channel settings reach Dagster as `dg.EnvVar`s (the UI shows the variable's name, never the
webhook URL or the SMTP password); a channel whose variable is unset is left out, and the
alerts are still evaluated and recorded.
"""

import datetime as dt
import os
from collections.abc import Mapping

import dagster as dg

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import Channel, SlackWebhookChannel, SmtpChannel, redact
from kpi_pipeline.alerts.run import failure_alert, notify_failure, run_alerts
from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.plan.loader import LoadedPlan


class AlertChannelsResource(dg.ConfigurableResource):
    """Where alerts go. Unset fields mean "no such channel"; secrets arrive as EnvVars."""

    slack_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None

    def channels(self, config: AlertsConfig) -> list[Channel]:
        result: list[Channel] = []
        if config.slack is not None and self.slack_webhook_url:
            result.append(SlackWebhookChannel(self.slack_webhook_url, config.timeout_seconds))
        if config.email is not None and self.smtp_host:
            result.append(
                SmtpChannel(
                    host=self.smtp_host,
                    port=int(self.smtp_port or 587),
                    sender=config.email.sender,
                    recipients=tuple(config.email.recipients),
                    username=self.smtp_username or None,
                    password=self.smtp_password or None,
                    starttls=config.email.starttls,
                    timeout_seconds=config.timeout_seconds,
                )
            )
        return result


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
        summary = run_alerts(wh, scores, config, channels, dt.datetime.now(dt.UTC), deadlines)
        for alert in summary.alerts:
            context.log.info(f"alert {alert.kind.value}: {alert.alert_id}")
        if not channels:
            context.log.info("no alert channel configured: alerts recorded, nothing sent")
        metadata = {
            "alerts_decided": len(summary.alerts),
            "periods_held": summary.held,
            "deliveries_sent": len(summary.delivered),
            "deliveries_failed": len(summary.failed),
            "channels": dg.MetadataValue.json([channel.name for channel in channels]),
        }
        if summary.failed:
            errors = [redact(f"{c} {a}: {e}", secrets) for a, c, e in summary.failed]
            raise dg.Failure(
                description=f"{len(summary.failed)} alert deliveries failed (kept for the next "
                "run): " + "; ".join(errors),
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return [alert_state]


def build_alert_sensors(loaded: LoadedPlan) -> list[dg.SensorDefinition]:
    config = loaded.plan.alerts

    @dg.run_failure_sensor(
        name="notify_run_failure",
        description="Tells the alert channels when a pipeline run fails, naming the failed steps.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def notify_run_failure(
        context: dg.RunFailureSensorContext, alert_channels: AlertChannelsResource
    ):
        channels = alert_channels.channels(config)
        if not channels:
            context.log.info("no alert channel configured: run failure not sent")
            return
        errors = []
        for event in context.get_step_failure_events():
            error = event.step_failure_data.error if event.step_failure_data else None
            cause = error.cause if error is not None and error.cause is not None else error
            lines = (cause.message.strip() if cause is not None else "").splitlines()
            first = lines[0] if lines else ""
            if cause is not None and f"{cause.cls_name}: " in first:
                first = first.split(f"{cause.cls_name}: ", 1)[1]  # drop "module.Class: "
            errors.append(f"step {event.step_key} failed: {first}")
        if not errors:
            errors.append(context.failure_event.message or "run failed")
        run = context.dagster_run
        alert = failure_alert(run.job_name, run.run_id, errors, dt.datetime.now(dt.UTC))
        outcome = notify_failure(channels, alert, config.retries, config.backoff_seconds)
        for name, error in outcome.items():
            if error is None:
                context.log.info(f"run failure sent to {name}")
            else:
                context.log.error(f"run failure not delivered to {name}: {error}")

    return [notify_run_failure]
