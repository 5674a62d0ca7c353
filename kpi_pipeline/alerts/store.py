"""Where alerts are remembered: the state per series and period, and the delivery log.

Decisions and the deliveries they call for are written in one transaction (an outbox):
a message is never decided without being queued for every channel, and a delivery that
fails stays queued until a later run delivers it — once, since delivered rows are done.

A delivery is given up, and stops being retried, when the channel refused it for good (a
Slack 4xx other than 429, an SMTP 5xx) or after `GIVE_UP_AFTER_RUNS` runs tried it; the row
keeps the last error and says why it was given up (`given_up_at`, `given_up_reason`).
Pipeline-failure notices go through the same log, keyed by run id, so a run is announced
once whichever path (sensor or CLI) reaches it first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from kpi_pipeline.alerts.channels import DeliveryResult
from kpi_pipeline.alerts.model import Alert
from kpi_pipeline.alerts.rules import SERIES, STATE_COLUMNS, Evaluation
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse

ALERT_STATE = TableSpec(
    "marts",
    "alert_state",
    (
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_start", "date"),
        ("period_label", "text"),
        ("status", "text"),
        ("last_sent_status", "text"),
        ("last_sent_at", "timestamp"),
        ("hold_reason", "text"),
        ("evaluated_at", "timestamp"),
    ),
    grain="one row per kpi, grain, segment_type, segment and judged or held closed period",
    keys=(*SERIES, "period_start"),
)

ALERT_DELIVERIES = TableSpec(
    "marts",
    "alert_deliveries",
    (
        ("alert_id", "text"),
        ("channel", "text"),
        ("kind", "text"),
        ("kpi_id", "text"),
        ("grain", "text"),
        ("segment_type", "text"),
        ("segment", "text"),
        ("period_label", "text"),
        ("status", "text"),  # pending, delivered or failed
        ("attempts", "bigint"),
        ("last_error", "text"),
        ("alert_json", "text"),
        ("created_at", "timestamp"),
        ("delivered_at", "timestamp"),
        # Added later (null on rows written before: read as 0 runs, not given up).
        ("runs_tried", "bigint"),
        ("given_up_at", "timestamp"),
        ("given_up_reason", "text"),
    ),
    grain="one row per alert and channel",
    keys=("alert_id", "channel"),
)

# Runs that may try a delivery before it stops blocking the log: with a daily schedule,
# five days of a channel down.
GIVE_UP_AFTER_RUNS = 5


@dataclass(frozen=True)
class Pending:
    alert: Alert
    channel: str
    runs_tried: int  # runs that tried it before this one


@dataclass(frozen=True)
class Outcome:
    """What one run's delivery attempt left in the log."""

    status: str  # delivered or failed
    given_up_reason: str | None = None  # set when it will not be tried again


def ensure_tables(warehouse: Warehouse) -> None:
    warehouse.ensure_table(ALERT_STATE)
    warehouse.ensure_table(ALERT_DELIVERIES)


def read_state(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read_frame(f"select * from {warehouse.relation(ALERT_STATE)}")


def record(
    warehouse: Warehouse, evaluation: Evaluation, channels: Iterable[str], now: dt.datetime
) -> int:
    """Upsert the state rows and queue each alert for each channel, all or nothing."""
    queued = _queue_frame(evaluation.alerts, list(channels), now)
    state = evaluation.state[STATE_COLUMNS]
    delete = sa.text(
        f"delete from {warehouse.relation(ALERT_STATE)} where kpi_id = :kpi_id and grain = :grain "
        "and segment_type = :segment_type and segment = :segment and period_start = :period_start"
    )
    with warehouse.transaction() as conn:
        for row in state[[*SERIES, "period_start"]].to_dict("records"):
            conn.execute(delete, row)
        warehouse.bulk_insert(conn, ALERT_STATE, _typed_state(state))
        warehouse.bulk_insert(conn, ALERT_DELIVERIES, _typed_deliveries(queued))
    return len(queued)


def queue_once(
    warehouse: Warehouse, alert: Alert, channels: Iterable[str], now: dt.datetime
) -> list[str]:
    """Queue `alert` on each channel that has no row for it yet; the channels queued.
    Queuing the same alert id again (a run already announced) adds nothing."""
    with warehouse.transaction() as conn:
        known = {
            row[0]
            for row in conn.execute(
                sa.text(
                    f"select channel from {warehouse.relation(ALERT_DELIVERIES)} "
                    "where alert_id = :alert_id"
                ),
                {"alert_id": alert.alert_id},
            )
        }
        new = [channel for channel in channels if channel not in known]
        if new:
            frame = _queue_frame([alert], new, now)
            warehouse.bulk_insert(conn, ALERT_DELIVERIES, _typed_deliveries(frame))
    return new


def delivery_statuses(warehouse: Warehouse, alert_id: str) -> dict[str, str]:
    """{channel: status} of one alert's deliveries (empty when it was never queued)."""
    frame = warehouse.read_frame(
        f"select channel, status from {warehouse.relation(ALERT_DELIVERIES)} "
        "where alert_id = :alert_id",
        {"alert_id": alert_id},
    )
    return dict(zip(frame["channel"], frame["status"], strict=True))


def undelivered(
    warehouse: Warehouse, channels: Iterable[str], alert_id: str | None = None
) -> list[Pending]:
    """Every queued or failed delivery on an active channel that is not given up, oldest
    first (only `alert_id`'s when given)."""
    where = "status <> 'delivered' and given_up_at is null"
    if alert_id is not None:
        where += " and alert_id = :alert_id"
    frame = warehouse.read_frame(
        f"select channel, alert_json, coalesce(runs_tried, 0) as runs_tried "
        f"from {warehouse.relation(ALERT_DELIVERIES)} where {where} "
        "order by created_at, alert_id, channel",
        {"alert_id": alert_id} if alert_id is not None else None,
    )
    active = set(channels)
    return [
        Pending(Alert.from_json(text), channel, int(runs))
        for channel, text, runs in zip(
            frame["channel"], frame["alert_json"], frame["runs_tried"], strict=True
        )
        if channel in active
    ]


def give_up_reason(
    result: DeliveryResult, runs_tried: int, give_up_after_runs: int = GIVE_UP_AFTER_RUNS
) -> str | None:
    """Why a failed delivery is not to be tried again, or None to try it on the next run."""
    if result.delivered:
        return None
    if not result.retryable:
        return "refused by the channel, not retried"
    if runs_tried >= give_up_after_runs:
        return f"still failing after {runs_tried} runs, no longer retried"
    return None


def mark(
    warehouse: Warehouse,
    pending: Pending,
    sent: Alert,
    result: DeliveryResult,
    now: dt.datetime,
    give_up_after_runs: int = GIVE_UP_AFTER_RUNS,
) -> Outcome:
    """Record one run's delivery attempt (its own transaction: it survives a later crash).
    `sent` is the alert as worded for this attempt; it replaces the stored one."""
    runs_tried = pending.runs_tried + 1
    reason = give_up_reason(result, runs_tried, give_up_after_runs)
    with warehouse.transaction() as conn:
        conn.execute(
            sa.text(
                f"update {warehouse.relation(ALERT_DELIVERIES)} set status = :status, "
                "attempts = attempts + :attempts, last_error = :error, delivered_at = :at, "
                "alert_json = :alert_json, runs_tried = :runs_tried, "
                "given_up_at = :given_up_at, given_up_reason = :reason "
                "where alert_id = :alert_id and channel = :channel"
            ),
            {
                "status": "delivered" if result.delivered else "failed",
                "attempts": result.attempts,
                "error": result.error,
                "at": now if result.delivered else None,
                "alert_json": sent.to_json(),
                "runs_tried": runs_tried,
                "given_up_at": now if reason else None,
                "reason": reason,
                "alert_id": pending.alert.alert_id,
                "channel": pending.channel,
            },
        )
    return Outcome("delivered" if result.delivered else "failed", reason)


def give_up_inactive(
    warehouse: Warehouse, alert_id: str, active: Iterable[str], now: dt.datetime
) -> list[str]:
    """Give up `alert_id`'s undelivered rows on channels not in `active` (queued for a
    channel the sending process has no settings for); the channels given up."""
    active = set(active)
    statuses = delivery_statuses(warehouse, alert_id)
    idle = [c for c, status in statuses.items() if status != "delivered" and c not in active]
    with warehouse.transaction() as conn:
        for channel in idle:
            conn.execute(
                sa.text(
                    f"update {warehouse.relation(ALERT_DELIVERIES)} set status = 'failed', "
                    "last_error = 'channel not configured', given_up_at = :at, "
                    "given_up_reason = :reason "
                    "where alert_id = :alert_id and channel = :channel and given_up_at is null"
                ),
                {
                    "at": now,
                    "reason": "no settings for this channel where the notice was sent",
                    "alert_id": alert_id,
                    "channel": channel,
                },
            )
    return idle


def _queue_frame(alerts: list[Alert], channels: list[str], now: dt.datetime) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "alert_id": alert.alert_id,
                "channel": channel,
                "kind": alert.kind.value,
                "kpi_id": alert.kpi_id,
                "grain": alert.grain,
                "segment_type": alert.segment_type,
                "segment": alert.segment,
                "period_label": alert.period_label,
                "status": "pending",
                "attempts": 0,
                "last_error": None,
                "alert_json": alert.to_json(),
                "created_at": now,
                "delivered_at": None,
                "runs_tried": 0,
                "given_up_at": None,
                "given_up_reason": None,
            }
            for alert in alerts
            for channel in channels
        ],
        columns=ALERT_DELIVERIES.column_names,
    )


def _typed_state(state: pd.DataFrame) -> pd.DataFrame:
    return state.astype(
        {
            "period_start": "datetime64[s]",
            "last_sent_at": "datetime64[us, UTC]",
            "evaluated_at": "datetime64[us, UTC]",
            "last_sent_status": "object",
            "hold_reason": "object",
        }
    )


def _typed_deliveries(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {
            "attempts": "int64",
            "last_error": "object",
            "created_at": "datetime64[us, UTC]",
            "delivered_at": "datetime64[us, UTC]",
            "runs_tried": "int64",
            "given_up_at": "datetime64[us, UTC]",
            "given_up_reason": "object",
        }
    )
