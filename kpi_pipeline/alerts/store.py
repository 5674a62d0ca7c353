"""Where alerts are remembered: the state per series and period, and the delivery log.

Decisions and the deliveries they call for are written in one transaction (an outbox):
a message is never decided without being queued for every channel, and a delivery that
fails stays queued until a later run delivers it — once, since delivered rows are done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

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
    ),
    grain="one row per alert and channel",
    keys=("alert_id", "channel"),
)


def ensure_tables(warehouse: Warehouse) -> None:
    warehouse.ensure_table(ALERT_STATE)
    warehouse.ensure_table(ALERT_DELIVERIES)


def read_state(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read_frame(f"select * from {warehouse.relation(ALERT_STATE)}")


def record(
    warehouse: Warehouse, evaluation: Evaluation, channels: Iterable[str], now: dt.datetime
) -> int:
    """Upsert the state rows and queue each alert for each channel, all or nothing."""
    channels = list(channels)
    queued = pd.DataFrame(
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
            }
            for alert in evaluation.alerts
            for channel in channels
        ],
        columns=ALERT_DELIVERIES.column_names,
    )
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


def undelivered(warehouse: Warehouse, channels: Iterable[str]) -> list[tuple[Alert, str]]:
    """(alert, channel) for every queued or failed delivery on an active channel, oldest first."""
    frame = warehouse.read_frame(
        f"select alert_id, channel, alert_json from {warehouse.relation(ALERT_DELIVERIES)} "
        "where status <> 'delivered' order by created_at, alert_id, channel"
    )
    active = set(channels)
    return [
        (Alert.from_json(text), channel)
        for channel, text in zip(frame["channel"], frame["alert_json"], strict=True)
        if channel in active
    ]


def mark(
    warehouse: Warehouse, alert_id: str, channel: str, result: DeliveryResult, now: dt.datetime
) -> None:
    """Record one delivery attempt's outcome (its own transaction: it survives a later crash)."""
    with warehouse.transaction() as conn:
        conn.execute(
            sa.text(
                f"update {warehouse.relation(ALERT_DELIVERIES)} set status = :status, "
                "attempts = attempts + :attempts, last_error = :error, delivered_at = :at "
                "where alert_id = :alert_id and channel = :channel"
            ),
            {
                "status": "delivered" if result.delivered else "failed",
                "attempts": result.attempts,
                "error": result.error,
                "at": now if result.delivered else None,
                "alert_id": alert_id,
                "channel": channel,
            },
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
        }
    )
