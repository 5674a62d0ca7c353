"""Alerts end to end: the real daily job, the real channels, real local servers.

Each scenario drives `build_definitions` + the `daily_kpis` job over scripted weeks of a
tiny conversion-rate KPI, and counts what the local Slack webhook and SMTP server received.
Path of the KPI: 2 % on 2026-01-01 to 3 % on 2026-12-31 (364 days), 10 % relative band,
rule: weekly periods alert on `off_track`. A week is compared with the path's average over
its days: W02 (Mon 5..Sun 11, offsets 4..10, midpoint 7) with 0.02 + 0.01 x 7/364 = 2.019 %,
W03 (Mon 12..Sun 18, offsets 11..17, midpoint 14) with 0.02 + 0.01 x 14/364 = 2.038 %.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.reports.scorecard import format_scorecard, latest_closed_scores
from kpi_pipeline.warehouse.engine import Warehouse

MONDAY_W02 = dt.date(2026, 1, 5)  # ISO week 2026-W02 runs Monday 5 to Sunday 11 January
W02 = (MONDAY_W02, MONDAY_W02 + dt.timedelta(days=6))
W03 = (MONDAY_W02 + dt.timedelta(days=7), MONDAY_W02 + dt.timedelta(days=13))
# 70 purchases in 7,000 sessions = 1.00 %: Wilson 95 % interval [0.792 %, 1.261 %] lies
# wholly below the band edge 0.9 x 2.019 % = 1.817 %: off track beyond doubt.
SLIP = [(1000, 10)] * 7
# 175 in 7,000 = 2.50 %, ahead of the path (2.038 % over W03), short of the 3 % target.
HEALTHY = [(1000, 25)] * 7
# 2 purchases in 140 sessions = 1.43 %: further below the path than the band, but its
# interval [0.393 %, 5.059 %] still reaches the band — noise, not a signal.
NOISY_DIP = [(20, 1), (20, 1), (20, 0), (20, 0), (20, 0), (20, 0), (20, 0)]

SLIP_FIELDS = [
    "*KPI*\nConversion rate",
    "*Objective*\nSell more online",
    "*Period*\nweek 2026-W02",
    "*Status*\nnow off track",  # the series was never judged before: new, not a change
    "*Value*\n1.00% vs expected 2.02%",  # W02 midpoint: 0.02 + 0.01 x 7/364 = 2.0192 %
    "*Target*\n3.00% by 2026-12-31",
    "*Interval*\n0.79% – 1.26%",
]
SLIP_TEXT = """\
Conversion rate is off track

KPI        Conversion rate
Objective  Sell more online
Period     week 2026-W02
Status     now off track
Value      1.00% vs expected 2.02%
Target     3.00% by 2026-12-31
Interval   0.79% – 1.26%
"""


def _slack_fields(payload: dict) -> list[str]:
    return [f["text"] for f in payload["blocks"][1]["fields"]]


def _deliveries(project):
    frame = project.read(
        "select alert_id, channel, kind, status, attempts, last_error "
        "from marts.alert_deliveries order by created_at, channel"
    )
    return frame.astype(object).where(frame.notna(), None)  # SQL nulls as None


def test_slip_then_recovery_sends_exactly_two_messages_per_channel(project, channels_env, secrets):
    slack, smtp = channels_env
    project.write_week(W02[0], SLIP)
    assert project.run(*W02).success
    # Same day again: nothing changed since the slip was sent, so nothing new goes out.
    assert project.run(*W02).success
    assert (len(slack.received), len(smtp.received)) == (1, 1)

    project.write_week(W03[0], HEALTHY)
    assert project.run(*W03).success
    assert project.run(*W03).success  # and the recovery is not repeated either
    assert (len(slack.received), len(smtp.received)) == (2, 2)

    slip, recovered = slack.received
    assert slip["text"] == "Conversion rate is off track: week 2026-W02"
    assert slip["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: Conversion rate is off track"},
    }
    assert _slack_fields(slip) == SLIP_FIELDS
    context = slip["blocks"][2]["elements"][0]["text"]
    assert context.startswith("kpi-pipeline · conv:week:all:all:2026-01-05:slipped:off_track:")
    assert recovered["text"] == "Conversion rate is back on track: week 2026-W03"
    assert _slack_fields(recovered)[3:6] == [
        "*Status*\noff track → on track",
        "*Value*\n2.50% vs expected 2.04%",  # W03 midpoint: 0.02 + 0.01 x 14/364 = 2.0385 %
        "*Target*\n3.00% by 2026-12-31",
    ]

    mail = smtp.received[0]
    assert mail["Subject"] == "[kpi-pipeline] Conversion rate is off track — week 2026-W02"
    assert mail["From"] == "kpi@tiny.example"
    assert mail["To"] == "lead@tiny.example, analyst@tiny.example"
    assert smtp.envelopes[0] == ("kpi@tiny.example", ["lead@tiny.example", "analyst@tiny.example"])
    assert smtp.logins[0] == (secrets["smtp_user"], secrets["smtp_password"])
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == SLIP_TEXT
    html = mail.get_body(("html",)).get_content()
    assert "<h2>Conversion rate is off track</h2>" in html
    assert '<tr><th align="left">Interval</th><td>0.79% – 1.26%</td></tr>' in html
    assert smtp.received[1]["Subject"] == (
        "[kpi-pipeline] Conversion rate is back on track — week 2026-W03"
    )

    state = project.read(
        "select period_label, status, last_sent_status from marts.alert_state order by 1"
    )
    assert list(state.itertuples(index=False, name=None)) == [
        ("2026-W02", "off_track", "off_track"),
        ("2026-W03", "on_track", "on_track"),
    ]
    log = _deliveries(project)
    assert list(zip(log.kind, log.channel, log.status, log.attempts, strict=True)) == [
        ("slipped", "email", "delivered", 1),
        ("slipped", "slack", "delivered", 1),
        ("recovered", "email", "delivered", 1),
        ("recovered", "slack", "delivered", 1),
    ]


def test_noisy_small_sample_dip_sends_nothing(project, channels_env):
    slack, smtp = channels_env
    project.write_week(W02[0], NOISY_DIP)
    assert project.run(*W02).success
    score = project.read(
        "select value, expected, tolerance_band, ci_high, status from marts.kpi_scores "
        "where period_label = '2026-W02' and segment = 'all'"
    ).iloc[0]
    # The case exists because the point alone is beyond the band (1.43 % < 1.817 %) ...
    assert score.value < score.expected - score.tolerance_band
    # ... while the interval's top reaches into it: at risk, which the rule does not alert.
    assert score.ci_high > score.expected - score.tolerance_band
    assert score.status == "at_risk"
    assert (slack.requests, len(smtp.received)) == (0, 0)


def test_partial_period_never_raises_an_alert(project, channels_env):
    slack, smtp = channels_env
    project.write_week(W02[0], SLIP[:3])  # Monday to Wednesday of W02 loaded so far
    assert project.run(W02[0], W02[0] + dt.timedelta(days=2)).success
    score = project.read(
        "select status, is_partial from marts.kpi_scores where period_label = '2026-W02'"
    ).iloc[0]
    # 30 / 3,000 = 1 %, off track against the path's average over Monday..Wednesday
    # (offsets 4..6, midpoint 5: 0.02 + 0.01 x 5/364 = 2.014 %), but the week is not over.
    assert (score.status, bool(score.is_partial)) == ("off_track", True)
    assert (slack.requests, len(smtp.received)) == (0, 0)
    assert project.read("select count(*) as n from marts.alert_state").n[0] == 0
    # The week so far is compared with nothing: W01 was never loaded.
    ptd = project.read("select days_elapsed, previous_value from marts.kpi_period_to_date")
    assert ptd.days_elapsed.tolist() == [3] and ptd.previous_value.isna().all()


def test_provisional_period_is_held_then_sent_once_settled(project_factory, channels_env):
    slack, smtp = channels_env
    # A rule holding weeks for 48 hours: a week ending on the last loaded day, or the day
    # before, may still be revised.
    project = project_factory(hold_hours=48)
    project.write_week(W02[0], SLIP)
    assert project.run(*W02).success  # as of Sunday the 11th: W02 just ended
    hold = project.read(
        "select status, hold_reason from marts.kpi_scores where period_label = '2026-W02'"
    ).iloc[0]
    assert (hold.status, hold.hold_reason) == ("off_track", "provisional")
    held = project.read("select period_label, hold_reason, last_sent_status from marts.alert_state")
    assert list(held.itertuples(index=False, name=None)) == [("2026-W02", "provisional", None)]
    assert (slack.requests, len(smtp.received)) == (0, 0)
    # The scorecard says why the off-track week has not been alerted yet.
    warehouse = Warehouse.from_url(project.warehouse_url, load_plan(project.plan_path).plan_id)
    try:
        card = format_scorecard(latest_closed_scores(warehouse)).splitlines()
    finally:
        warehouse.dispose()
    assert card[0].split()[-2:] == ["status", "hold"]
    assert card[2].split()[-3:] == ["off_track", "held:", "provisional"]

    project.write_week(W03[0], HEALTHY[:1])
    assert project.run(W03[0], W03[0]).success  # as of Monday the 12th: still inside 48 h
    assert (slack.requests, len(smtp.received)) == (0, 0)

    project.write_week(W03[0], HEALTHY[:2])
    assert project.run(W03[0] + dt.timedelta(days=1), W03[0] + dt.timedelta(days=1)).success
    # As of Tuesday the 13th, two whole days after W02 ended: settled, and sent.
    assert (len(slack.received), len(smtp.received)) == (1, 1)
    assert slack.received[0]["text"] == "Conversion rate is off track: week 2026-W02"
    assert project.run(W03[0], W03[0] + dt.timedelta(days=1)).success
    assert (len(slack.received), len(smtp.received)) == (1, 1)


def test_channel_down_records_the_failure_and_delivers_once_next_run(project, channels_env):
    slack, smtp = channels_env
    slack.down = True
    project.write_week(W02[0], SLIP)
    failed = project.run(*W02)
    # The alert step fails visibly ...
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert failure.step_key == "marts__alert_state"
    message = failure.step_failure_data.error.message
    assert "1 alert deliveries failed" in message
    assert "slack webhook answered HTTP 500" in message
    # ... after three attempts at Slack; the email went out and is not sent again.
    assert slack.requests == 3 and not slack.received
    assert len(smtp.received) == 1
    log = _deliveries(project)
    assert sorted(zip(log.channel, log.status, log.attempts, log.last_error, strict=True)) == [
        ("email", "delivered", 1, None),
        # A 500 is retried: three attempts this run, and the body's excerpt kept.
        ("slack", "failed", 3, "slack webhook answered HTTP 500: server_error"),
    ]
    # The decision itself is kept: the state says the slip was sent (queued) ...
    state = project.read("select last_sent_status from marts.alert_state")
    assert state.last_sent_status.tolist() == ["off_track"]

    slack.down = False
    assert project.run(*W02).success
    # ... and the next run delivers what was not delivered, once, and nothing else.
    assert (len(slack.received), len(smtp.received)) == (1, 1)
    assert slack.received[0]["text"] == "Conversion rate is off track: week 2026-W02"
    assert project.run(*W02).success
    assert (len(slack.received), len(smtp.received)) == (1, 1)
    log = _deliveries(project)
    assert sorted(zip(log.channel, log.status, log.attempts, strict=True)) == [
        ("email", "delivered", 1),
        ("slack", "delivered", 4),
    ]


def test_email_down_is_retried_then_recorded(project, channels_env):
    slack, smtp = channels_env
    smtp.down = True
    project.write_week(W02[0], SLIP)
    assert not project.run(*W02).success
    log = _deliveries(project)
    email_row = log[log.channel == "email"].iloc[0]
    assert (email_row.status, email_row.attempts) == ("failed", 3)
    assert email_row.last_error.startswith("smtp 127.0.0.1:")
    assert "451" in email_row.last_error
    smtp.down = False
    assert project.run(*W02).success
    assert (len(slack.received), len(smtp.received)) == (1, 1)


def test_secrets_never_reach_logs_errors_or_metadata(project, channels_env, secrets):
    slack, _ = channels_env
    slack.down = True
    project.write_week(W02[0], SLIP)
    result = project.run(*W02)
    assert not result.success
    texts = [str(event) for event in result.all_events]
    texts += [str(r.dagster_event) for r in project.instance.all_logs(result.run_id)]
    texts += [str(r.user_message) for r in project.instance.all_logs(result.run_id)]
    texts += [
        str(e) for e in project.read("select last_error from marts.alert_deliveries").last_error
    ]
    defs = build_definitions(project.plan_path, warehouse_url=project.warehouse_url)
    defs_repr = repr(defs.resources["alert_channels"])
    texts.append(defs_repr)
    # The EnvVar names show; the values do not.
    assert "TEST_SLACK_WEBHOOK" in defs_repr and "TEST_SMTP_PASSWORD" in defs_repr
    for secret in (secrets["slack_path"], "s3cr3t-webhook-token", secrets["smtp_password"]):
        assert not [t for t in texts if secret in t], secret


def test_no_channel_configured_evaluates_and_records_without_sending(project_factory, monkeypatch):
    for name in ("TEST_SLACK_WEBHOOK", "TEST_SMTP_HOST"):
        monkeypatch.delenv(name)
    project = project_factory()
    project.write_week(W02[0], SLIP)
    result = project.run(*W02)
    assert result.success
    state = project.read("select status, last_sent_status from marts.alert_state")
    assert list(state.itertuples(index=False, name=None)) == [("off_track", "off_track")]
    assert project.read("select count(*) as n from marts.alert_deliveries").n[0] == 0
    materialization = next(
        m
        for m in result.asset_materializations_for_node("marts__alert_state")
        if m.asset_key == dg.AssetKey(["marts", "alert_state"])
    )
    assert materialization.metadata["alerts_decided"].value == 1
    assert materialization.metadata["channels"].value == []
