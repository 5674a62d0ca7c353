"""Which failed deliveries are tried again, for how long, and with which words.

The tiny plan of conftest, the real daily job, the real channels and local servers. A 4xx
from Slack (other than 429) means the message or webhook is wrong: recorded with its reason
and never sent again. A 429 or 5xx is tried on later runs, `GIVE_UP_AFTER_RUNS` (5) of them,
then given up with a notice so it stops failing every run. A queued alert is worded with the
plan's labels of the day it is sent.
"""

from __future__ import annotations

import datetime as dt

from conftest import MONDAY_W02

from kpi_pipeline.alerts import store
from kpi_pipeline.alerts.channels import (
    SlackWebhookChannel,
    channels_from_environment,
    send_with_retry,
)
from kpi_pipeline.alerts.model import Alert, AlertKind
from kpi_pipeline.alerts.run import plan_wording, run_alerts
from kpi_pipeline.alerts.run_failures import failure_alert
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.warehouse.engine import Warehouse

W02 = (MONDAY_W02, MONDAY_W02 + dt.timedelta(days=6))
SLIP = [(1000, 10)] * 7  # 1.00 % against a path of 2.02 %: off track (test_alert_delivery)
HEALTHY = [(1000, 25)] * 7  # 2.50 %: on track, nothing to say


def _log(project):
    frame = project.read(
        "select channel, status, attempts, last_error, runs_tried, given_up_reason, "
        "alert_json from marts.alert_deliveries order by channel"
    )
    return frame.astype(object).where(frame.notna(), None)


def _failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "marts__alert_state"
    return failure.step_failure_data.error.message


def test_a_slack_refusal_is_recorded_with_its_reason_and_never_retried(project, channels_env):
    slack, smtp = channels_env
    slack.answer = (400, b"invalid_blocks", {})
    project.write_week(W02[0], SLIP)
    result = project.run(*W02)
    assert not result.success  # people learn of it once, through the failed step
    assert "slack webhook answered HTTP 400: invalid_blocks" in _failure_message(result)
    assert "(refused by the channel, not retried)" in _failure_message(result)
    assert len(slack.refused) == 1  # one attempt: retrying the same payload cannot help
    assert len(smtp.received) == 1  # the other channel is not held back
    email_row, slack_row = _log(project).itertuples(index=False)  # ordered by channel
    assert (slack_row.channel, slack_row.status, slack_row.attempts) == ("slack", "failed", 1)
    assert slack_row.last_error == "slack webhook answered HTTP 400: invalid_blocks"
    assert slack_row.given_up_reason == "refused by the channel, not retried"
    assert (email_row.status, email_row.given_up_reason) == ("delivered", None)

    slack.answer = None
    assert project.run(*W02).success  # the refused alert no longer fails runs ...
    assert (len(slack.refused), len(slack.received)) == (1, 0)  # ... nor is it sent again


def test_rate_limited_alert_is_retried_on_later_runs_then_given_up_with_a_notice(
    project, channels_env
):
    slack, _ = channels_env
    slack.answer = (429, b"rate_limited", {"Retry-After": "1"})
    project.write_week(W02[0], SLIP)
    assert not project.run(*W02).success  # run 1: 3 attempts, a second apart (Retry-After)
    assert len(slack.refused) == 3
    # Runs 2 to 4, each the alert step's own call on the same warehouse and plan.
    loaded = load_plan(project.plan_path)
    config = loaded.plan.alerts
    channels = channels_from_environment(config, _environ(slack))
    waits: list[float] = []
    warehouse = Warehouse.from_url(project.warehouse_url, loaded.plan_id)
    try:
        scores = warehouse.read_frame(f"select * from {warehouse.relation('marts', 'kpi_scores')}")
        for day in range(2, 5):
            now = dt.datetime(2026, 1, 11 + day, 7, tzinfo=dt.UTC)
            summary = run_alerts(
                warehouse,
                scores,
                config,
                channels,
                now,
                sleep=waits.append,
                wording=plan_wording(loaded.plan),
            )
            assert [c for _, c, _ in summary.failed] == ["slack"] and not summary.given_up
    finally:
        warehouse.dispose()
    # Each wait is the larger of the doubling backoff (0.01 s, 0.02 s) and Retry-After.
    assert waits == [1.0, 1.0] * 3
    assert len(slack.refused) == 12 and _log(project).runs_tried[1] == 4

    result = project.run(*W02)  # run 5: the last try, then the notice
    assert not result.success
    assert "(still failing after 5 runs, no longer retried)" in _failure_message(result)
    notices = [
        r.user_message
        for r in project.instance.all_logs(result.run_id)
        if r.level >= 30 and "given up on slack" in r.user_message
    ]
    assert len(notices) == 1 and "later alerts are sent as usual" in notices[0]
    slack_row = _log(project).iloc[1]
    assert (slack_row.status, slack_row.attempts, slack_row.runs_tried) == ("failed", 15, 5)
    assert slack_row.last_error == "slack webhook answered HTTP 429: rate_limited"

    assert project.run(*W02).success  # run 6: the channel is free again
    assert len(slack.refused) == 15


def test_a_resent_alert_carries_the_labels_of_the_day_it_is_sent(project, channels_env):
    slack, _ = channels_env
    slack.down = True
    project.write_week(W02[0], SLIP)
    assert not project.run(*W02).success
    stored = Alert.from_json(_log(project).alert_json[1])
    assert stored.kpi_label == "Conversion rate"
    # The plan renames the KPI (and its objective) before the next run.
    plan = project.plan_path.read_text(encoding="utf-8")
    plan = plan.replace("label: Conversion rate", "label: Online conversion rate")
    project.plan_path.write_text(
        plan.replace("title: Sell more online", "title: Grow online sales"), encoding="utf-8"
    )
    slack.down = False
    assert project.run(*W02).success
    (payload,) = slack.received
    assert payload["text"] == "Online conversion rate is off track: week 2026-W02"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[:2] == ["*KPI*\nOnline conversion rate", "*Objective*\nGrow online sales"]
    # The log keeps what was actually sent.
    assert Alert.from_json(_log(project).alert_json[1]).kpi_label == "Online conversion rate"


def test_a_deliveries_table_from_before_is_evolved_and_its_queue_still_sent(project, channels_env):
    slack, smtp = channels_env
    plan_id = load_plan(project.plan_path).plan_id
    # marts.alert_deliveries as the previous release declared it, holding a failed delivery.
    old = TableSpec(
        "marts", "alert_deliveries", store.ALERT_DELIVERIES.columns[:-3], grain="before"
    )
    old_alert = Alert(
        alert_id="conv:week:all:all:2025-12-29:slipped:off_track:20260105T070000",
        kind=AlertKind.SLIPPED,
        kpi_id="conv",
        kpi_label="Conv. (old label)",
        kpi_kind="conversion_rate",
        objective_title="Old objective",
        grain="week",
        segment_type="all",
        segment="all",
        period_start="2025-12-29",
        period_label="2026-W01",
        previous_status=None,
        status="off_track",
        value=0.01,
        expected=0.02,
        target=0.03,
    )
    warehouse = Warehouse.from_url(project.warehouse_url, plan_id)
    try:
        warehouse.ensure_table(old)
        row = store._queue_frame([old_alert], ["slack"], dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
        row = row[old.column_names].assign(status="failed", attempts=3, last_error="HTTP 500")
        row = row.astype(
            {
                "attempts": "int64",
                "last_error": "object",
                "created_at": "datetime64[us, UTC]",
                "delivered_at": "datetime64[us, UTC]",
            }
        )
        with warehouse.transaction() as conn:
            warehouse.bulk_insert(conn, old, row)
    finally:
        warehouse.dispose()

    project.write_week(W02[0], HEALTHY)  # nothing new to say: only the old alert goes out
    assert project.run(*W02).success
    (payload,) = slack.received
    assert payload["text"] == "Conversion rate is off track: week 2026-W01"  # today's label
    assert smtp.received == []  # it was queued for Slack only
    log = _log(project)
    assert list(zip(log.channel, log.status, log.attempts, log.runs_tried, strict=True)) == [
        ("slack", "delivered", 4, 1)  # the old row's 3 attempts and this run's one
    ]
    changes = project.read(
        "select column_name from meta.schema_changes where table_name = 'alert_deliveries' "
        "and change = 'add column' order by column_name"
    )
    assert changes.column_name.tolist() == ["given_up_at", "given_up_reason", "runs_tried"]


def _environ(slack) -> dict[str, str]:
    return {"TEST_SLACK_WEBHOOK": slack.url}


def test_smtp_permanent_refusal_is_not_retried_but_a_transient_one_is(smtp_server, smtp_channel):
    channel = smtp_channel
    alert = failure_alert("daily_kpis", "r1", [], dt.datetime(2026, 1, 12, tzinfo=dt.UTC))
    smtp_server.refuse_with = "554 5.7.1 message rejected"  # SMTP 5xx: permanent
    refused = send_with_retry(channel, alert, 3, 0, lambda _: None)
    assert (refused.delivered, refused.attempts, refused.retryable) == (False, 1, False)
    assert "554" in refused.error and "message rejected" in refused.error
    smtp_server.refuse_with, smtp_server.down = None, True  # 451: transient
    transient = send_with_retry(channel, alert, 3, 0, lambda _: None)
    assert (transient.delivered, transient.attempts, transient.retryable) == (False, 3, True)


def test_a_long_retry_after_leaves_the_alert_to_the_next_run(slack_server):
    slack_server.answer = (429, b"rate_limited", {"Retry-After": "120"})
    waits: list[float] = []
    alert = failure_alert("daily_kpis", "r1", [], dt.datetime(2026, 1, 12, tzinfo=dt.UTC))
    result = send_with_retry(SlackWebhookChannel(slack_server.url), alert, 3, 0.01, waits.append)
    # Two minutes is longer than a run should hold (30 s): one attempt, kept for later.
    assert (result.delivered, result.attempts, result.retryable, waits) == (False, 1, True, [])
    assert result.error == "slack webhook answered HTTP 429: rate_limited"
