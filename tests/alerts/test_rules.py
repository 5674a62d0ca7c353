"""The alert state machine and redaction, as pure functions (no servers, no warehouse)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from kpi_pipeline.alerts.channels import (
    SlackWebhookChannel,
    SmtpChannel,
    redact,
    send_with_retry,
)
from kpi_pipeline.alerts.model import AlertKind
from kpi_pipeline.alerts.rules import decide, evaluate
from kpi_pipeline.alerts.run_failures import failure_alert
from kpi_pipeline.plan.alerts import AlertRule, AlertsConfig

NOW = dt.datetime(2026, 1, 20, 7, 0, tzinfo=dt.UTC)
OFF_ONLY = AlertRule(grains=["week"], statuses=["off_track"])
BOTH = AlertRule(grains=["week"], statuses=["at_risk", "off_track"])
REMIND_DAILY = AlertRule(grains=["week"], statuses=["off_track"], renotify_hours=24)


@pytest.mark.parametrize(
    ("status", "last_sent", "sent_hours_ago", "rule", "kind"),
    [
        # Nothing sent yet reads as "on track": a first off-track period slips.
        pytest.param("off_track", None, None, OFF_ONLY, AlertKind.SLIPPED, id="first-slip"),
        # The same status again (a re-run, or the next period still off): silence.
        pytest.param("off_track", "off_track", 1, OFF_ONLY, None, id="repeat-is-silent"),
        # at_risk is not alerted by an off_track-only rule ...
        pytest.param("at_risk", None, None, OFF_ONLY, None, id="at-risk-not-alerting"),
        # ... but is by a rule listing it, and off after at_risk is worse again.
        pytest.param("at_risk", None, None, BOTH, AlertKind.SLIPPED, id="at-risk-alerting"),
        pytest.param("off_track", "at_risk", 1, BOTH, AlertKind.SLIPPED, id="at-risk-to-off"),
        # Better but not on track (off -> at risk): no "recovered" yet.
        pytest.param("at_risk", "off_track", 1, BOTH, None, id="improving-not-recovered"),
        # Back on track, or achieved, after a bad status was sent: recovered.
        pytest.param("on_track", "off_track", 1, OFF_ONLY, AlertKind.RECOVERED, id="recovered"),
        pytest.param("achieved", "at_risk", 1, BOTH, AlertKind.RECOVERED, id="achieved-recovers"),
        # On track with nothing bad ever sent: nothing to recover from.
        pytest.param("on_track", None, None, OFF_ONLY, None, id="quiet-on-track"),
        # Too little data says nothing either way.
        pytest.param("insufficient_data", "off_track", 1, OFF_ONLY, None, id="no-data"),
        # Re-notification: still off 25 h after the last message -> reminder; after 23 h not.
        pytest.param("off_track", "off_track", 25, REMIND_DAILY, AlertKind.REMINDER, id="remind"),
        pytest.param("off_track", "off_track", 23, REMIND_DAILY, None, id="too-soon-to-remind"),
    ],
)
def test_decide(status, last_sent, sent_hours_ago, rule, kind):
    sent_at = None if sent_hours_ago is None else NOW - dt.timedelta(hours=sent_hours_ago)
    assert decide(status, last_sent, sent_at, rule, NOW) is kind


def _scores(rows):
    return pd.DataFrame(
        [
            {
                "kpi_id": "conv",
                "kpi_label": "Conversion rate",
                "kind": "conversion_rate",
                "objective_title": "Sell",
                "grain": "week",
                "segment_type": "all",
                "segment": "all",
                "period_start": pd.Timestamp(start),
                "period_label": label,
                "status": status,
                "is_partial": partial,
                "hold_reason": hold,
                "value": 0.01,
                "expected": 0.02,
                "target": 0.03,
                "ci_low": None,
                "ci_high": None,
                "forecast_at_deadline": None,
                "projected_status": None,
            }
            for start, label, status, partial, hold in rows
        ]
    )


def _state(rows):
    return pd.DataFrame(
        [
            {
                "kpi_id": "conv",
                "grain": "week",
                "segment_type": "all",
                "segment": "all",
                "period_start": pd.Timestamp(start),
                "period_label": label,
                "status": sent,
                "last_sent_status": sent,
                "last_sent_at": NOW - dt.timedelta(days=7),
                "hold_reason": hold,
                "evaluated_at": NOW - dt.timedelta(days=7),
            }
            for start, label, sent, hold in rows
        ]
    )


CONFIG = AlertsConfig(rules=[OFF_ONLY])


def test_only_the_latest_settled_period_is_judged_and_newer_ones_are_held():
    scores = _scores(
        [
            # History: an old off-track week must not alert on a first run ...
            ("2025-12-29", "2026-W01", "off_track", False, None),
            # ... only the latest settled one is judged (on track: nothing to say),
            ("2026-01-05", "2026-W02", "on_track", False, None),
            # the newer provisional week is recorded as held, and the partial one ignored.
            ("2026-01-12", "2026-W03", "off_track", False, "provisional"),
            ("2026-01-19", "2026-W04", "off_track", True, None),
        ]
    )
    result = evaluate(scores, _state([]), CONFIG, NOW)
    assert result.alerts == []
    assert result.held == 1
    holds = [None if pd.isna(h) else h for h in result.state.hold_reason]
    assert list(zip(result.state.period_label, holds, strict=True)) == [
        ("2026-W02", None),
        ("2026-W03", "provisional"),
    ]


def test_a_rerun_of_older_days_never_re_alerts():
    # The state already judged W03; a backfill re-scores up to W02 only (off track).
    scores = _scores([("2026-01-05", "2026-W02", "off_track", False, None)])
    state = _state([("2026-01-12", "2026-W03", "on_track", None)])
    result = evaluate(scores, state, CONFIG, NOW)
    assert (result.alerts, len(result.state)) == ([], 0)


def test_the_next_period_compares_with_what_the_series_last_sent():
    # W02's slip was sent; W03 still off: silence, and W03 carries "off_track" as last sent.
    scores = _scores([("2026-01-12", "2026-W03", "off_track", False, None)])
    state = _state([("2026-01-05", "2026-W02", "off_track", None)])
    result = evaluate(scores, state, CONFIG, NOW)
    assert result.alerts == []
    assert result.state.last_sent_status.tolist() == ["off_track"]


def test_rules_choose_grains_and_segments():
    # The only rule covers whole-site weeks: a tactic's week and a month are not judged.
    scores = pd.concat(
        [
            _scores([("2026-01-05", "2026-W02", "off_track", False, None)]).assign(
                segment_type="tactic", segment="email"
            ),
            _scores([("2026-01-01", "2026-01", "off_track", False, None)]).assign(grain="month"),
        ]
    )
    result = evaluate(scores, _state([]), CONFIG, NOW)
    assert (result.alerts, len(result.state)) == ([], 0)


def test_redact_replaces_secrets_and_their_url_quoted_forms():
    secret = "p@ss word/with:chars"
    text = f"login {secret} failed; url=https://x/?p=p%40ss%20word%2Fwith%3Achars"
    assert redact(text, [secret, None, ""]) == "login *** failed; url=https://x/?p=***"


def test_channel_reprs_hide_their_secrets():
    slack = SlackWebhookChannel("https://hooks.slack.com/services/T1/B2/tok3n")
    smtp = SmtpChannel("127.0.0.1", 25, "a@b.c", ("d@e.f",), "user", "pa55word")
    assert "tok3n" not in repr(slack) and "pa55word" not in repr(smtp)
    # The token path alone is a secret too (a proxy error may print only the path).
    assert "/services/T1/B2/tok3n" in slack.secrets


def test_unreachable_slack_is_reported_without_the_url():
    # Port 9 on loopback (discard) is closed here: connection refused, fast and local.
    channel = SlackWebhookChannel("http://127.0.0.1:9/services/T1/B2/tok3n", timeout_seconds=2)
    result = send_with_retry(channel, failure_alert("job", "run", [], NOW), 2, 0, lambda _: None)
    assert not result.delivered and result.attempts == 2
    assert result.error.startswith("slack webhook unreachable")
    assert "tok3n" not in result.error and "127.0.0.1:9" not in result.error
