"""The delivery log's rules on both warehouse engines (DuckDB, PostgreSQL), without a job.

One alert, two channels: what `queue_once`, `undelivered`, `mark` and `give_up_inactive`
leave in `marts.alert_deliveries` after each step, as rows.
"""

from __future__ import annotations

import datetime as dt

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import DeliveryResult
from kpi_pipeline.alerts.run_failures import failure_alert
from kpi_pipeline.warehouse.engine import Warehouse

NOW = dt.datetime(2026, 1, 12, 7, 0, tzinfo=dt.UTC)


def _rows(warehouse: Warehouse) -> list[tuple]:
    frame = warehouse.read_frame(
        "select channel, status, attempts, runs_tried, last_error, given_up_reason "
        f"from {warehouse.relation(store.ALERT_DELIVERIES)} order by channel"
    )
    frame = frame.astype(object).where(frame.notna(), None)
    return list(frame.itertuples(index=False, name=None))


def test_outbox_queues_once_retries_within_its_bound_and_gives_up(warehouse_url):
    warehouse = Warehouse.from_url(warehouse_url, "tiny")
    try:
        store.ensure_tables(warehouse)
        alert = failure_alert("daily_kpis", "r1", ["step x failed: boom"], NOW)
        assert store.queue_once(warehouse, alert, ["email", "slack"], NOW) == ["email", "slack"]
        # The same run again (the sensor after the CLI): nothing more is queued.
        assert store.queue_once(warehouse, alert, ["email", "slack"], NOW) == []
        pending = {p.channel: p for p in store.undelivered(warehouse, ["slack", "email"])}
        assert sorted(pending) == ["email", "slack"]

        store.mark(warehouse, pending["email"], alert, DeliveryResult(True, 1), NOW)
        refused = DeliveryResult(False, 1, "slack webhook answered HTTP 403: invalid_token", False)
        outcome = store.mark(warehouse, pending["slack"], alert, refused, NOW)
        assert outcome == store.Outcome("failed", "refused by the channel, not retried")
        assert _rows(warehouse) == [
            ("email", "delivered", 1, 1, None, None),
            (
                "slack",
                "failed",
                1,
                1,
                "slack webhook answered HTTP 403: invalid_token",
                "refused by the channel, not retried",
            ),
        ]
        assert store.undelivered(warehouse, ["slack", "email"]) == []  # nothing blocks

        # A retryable failure: tried by runs 1 and 2, given up on the second (bound of 2).
        other = failure_alert("daily_kpis", "r2", [], NOW)
        store.queue_once(warehouse, other, ["slack"], NOW)
        down = DeliveryResult(False, 3, "slack webhook answered HTTP 503: busy")
        for run, expected in ((1, None), (2, "still failing after 2 runs, no longer retried")):
            (item,) = store.undelivered(warehouse, ["slack"], alert_id=other.alert_id)
            assert item.runs_tried == run - 1
            outcome = store.mark(warehouse, item, other, down, NOW, give_up_after_runs=2)
            assert outcome.given_up_reason == expected
        assert store.undelivered(warehouse, ["slack"]) == []

        # A notice queued for a channel the sending process has no settings for.
        third = failure_alert("daily_kpis", "r3", [], NOW)
        store.queue_once(warehouse, third, ["email", "slack"], NOW)
        assert store.give_up_inactive(warehouse, third.alert_id, ["slack"], NOW) == ["email"]
        assert store.delivery_statuses(warehouse, third.alert_id) == {
            "email": "failed",
            "slack": "pending",
        }
        (left,) = store.undelivered(warehouse, ["email", "slack"], alert_id=third.alert_id)
        assert left.channel == "slack"
    finally:
        warehouse.dispose()
