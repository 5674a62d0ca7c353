"""Messages at the channels' documented limits, as the local Slack and SMTP servers got them.

Slack Block Kit (docs.slack.dev/reference/block-kit): header text <= 150 characters,
section text <= 3000, a section's fields <= 10 of <= 2000 each, context text <= 3000,
<= 50 blocks; our notification fallback `text` <= 3000. Email: the subject <= 78 characters
(RFC 5322 2.1.1's line length), its header line folded. Each limit is tried at limit - 1,
limit and limit + 1: the first two arrive whole, the third cut to the limit with "…".
"""

from __future__ import annotations

import datetime as dt

import pytest

from kpi_pipeline.alerts.channels import SlackWebhookChannel
from kpi_pipeline.alerts.model import Alert, AlertKind
from kpi_pipeline.alerts.run_failures import failure_alert

WORDS = "Returning visitors buying on mobile from the spring newsletter "
NOW = dt.datetime(2026, 1, 12, 7, 0, tzinfo=dt.UTC)


def label_of(length: int) -> str:
    """A KPI label of exactly `length` characters (nothing in it Slack escapes)."""
    return (WORDS * (length // len(WORDS) + 1))[:length]


def slipped(label: str) -> Alert:
    return Alert(
        alert_id="conv:week:all:all:2026-01-05:slipped:off_track:20260112T070000",
        kind=AlertKind.SLIPPED,
        kpi_id="conv",
        kpi_label=label,
        kpi_kind="conversion_rate",
        objective_title="Sell more online",
        grain="week",
        segment_type="all",
        segment="all",
        period_start="2026-01-05",
        period_label="2026-W02",
        previous_status=None,
        status="off_track",
        value=0.01,
        expected=0.0202,
        target=0.03,
        target_date="2026-12-31",
    )


def slack_limit_violations(payload: dict) -> list[str]:
    """Every documented Slack limit the payload breaks (none, for anything we send)."""
    found = []
    if len(payload["text"]) > 3000:
        found.append("fallback text")
    if len(payload["blocks"]) > 50:
        found.append("blocks")
    for block in payload["blocks"]:
        if block["type"] == "header" and len(block["text"]["text"]) > 150:
            found.append("header")
        if block["type"] == "section":
            if len(block.get("text", {}).get("text", "")) > 3000:
                found.append("section text")
            fields = block.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                found.append("section fields")
        if block["type"] == "context" and any(len(e["text"]) > 3000 for e in block["elements"]):
            found.append("context")
    return found


def send_to_slack(slack_server, alert: Alert) -> dict:
    SlackWebhookChannel(slack_server.url).send(alert)
    payload = slack_server.received[-1]
    assert slack_limit_violations(payload) == []
    return payload


# ":red_circle: " (13) + label + " is off track" (13): a label of 124 fills the 150.
@pytest.mark.parametrize(
    ("label_length", "expected_length", "cut"),
    [(123, 149, False), (124, 150, False), (125, 150, True)],
)
def test_slack_header_at_its_150_character_limit(slack_server, label_length, expected_length, cut):
    label = label_of(label_length)
    header = send_to_slack(slack_server, slipped(label))["blocks"][0]["text"]["text"]
    assert len(header) == expected_length
    if cut:  # the label gives way; the status stays readable
        assert header == f":red_circle: {label[:123]}… is off track"
    else:
        assert header == f":red_circle: {label} is off track"


# "*KPI*\n" (6) + the label: a label of 1994 fills the 2000.
@pytest.mark.parametrize(
    ("label_length", "expected_length", "cut"),
    [(1993, 1999, False), (1994, 2000, False), (1995, 2000, True)],
)
def test_slack_field_at_its_2000_character_limit(slack_server, label_length, expected_length, cut):
    label = label_of(label_length)
    field = send_to_slack(slack_server, slipped(label))["blocks"][1]["fields"][0]["text"]
    assert len(field) == expected_length
    assert field == ("*KPI*\n" + label if not cut else "*KPI*\n" + label[:1993] + "…")


def test_slack_escapes_what_mrkdwn_reads_as_markup(slack_server):
    payload = send_to_slack(slack_server, slipped("Sign-ups <paid> & organic"))
    assert payload["text"] == "Sign-ups &lt;paid&gt; &amp; organic is off track: week 2026-W02"
    assert payload["blocks"][1]["fields"][0]["text"] == (
        "*KPI*\nSign-ups &lt;paid&gt; &amp; organic"
    )
    # The header is plain text: Slack shows it as sent.
    assert payload["blocks"][0]["text"]["text"] == (
        ":red_circle: Sign-ups <paid> & organic is off track"
    )


def test_slack_cut_never_leaves_half_an_escaped_character(slack_server):
    # Escaped, the label is 1991 x, `&amp;` and yy (1998 > the 1994 left after "*KPI*\n"):
    # a plain cut at 1993 would end in `&a`; the whole entity goes instead.
    field = send_to_slack(slack_server, slipped("x" * 1991 + "&yy"))["blocks"][1]["fields"][0]
    assert field["text"] == "*KPI*\n" + "x" * 1991 + "…"


# Fallback: the label + " is off track: week 2026-W02" (28): a label of 2972 fills the 3000.
@pytest.mark.parametrize(
    ("label_length", "expected_length", "cut"),
    [(2971, 2999, False), (2972, 3000, False), (2973, 3000, True)],
)
def test_slack_fallback_text_at_its_3000_character_limit(
    slack_server, label_length, expected_length, cut
):
    label = label_of(label_length)
    text = send_to_slack(slack_server, slipped(label))["text"]
    assert len(text) == expected_length
    shown = label if not cut else label[:2971] + "…"
    assert text == shown + " is off track: week 2026-W02"


# A failure notice is one section text: "*Failure*\n" (10) + "job daily_kpis, run r1: "
# (24) + the step errors.
@pytest.mark.parametrize(
    ("error_length", "expected_length", "cut"),
    [(2965, 2999, False), (2966, 3000, False), (2967, 3000, True)],
)
def test_slack_section_text_at_its_3000_character_limit(
    slack_server, error_length, expected_length, cut
):
    error = ("step csv_exports failed: missing column key_events " * 60)[:error_length]
    alert = failure_alert("daily_kpis", "r1", [error], now=NOW)
    payload = send_to_slack(slack_server, alert)
    assert payload["text"] == "kpi-pipeline run failed"
    assert payload["blocks"][0]["text"]["text"] == ":rotating_light: kpi-pipeline run failed"
    text = payload["blocks"][1]["text"]["text"]
    assert len(text) == expected_length
    whole = f"*Failure*\njob daily_kpis, run r1: {error}"
    assert text == (whole if not cut else whole[:2999] + "…")


# "[kpi-pipeline] " (15) + label + " is off track — week 2026-W02" (29): 34 fills the 78.
@pytest.mark.parametrize(
    ("label_length", "expected_length", "cut"),
    [(33, 77, False), (34, 78, False), (35, 78, True)],
)
def test_email_subject_at_78_characters_and_its_header_folded(
    smtp_server, smtp_channel, label_length, expected_length, cut
):
    label = label_of(label_length)
    channel = smtp_channel
    channel.send(slipped(label))
    subject = smtp_server.received[-1]["Subject"]
    assert len(subject) == expected_length
    shown = label if not cut else label[:33] + "…"
    assert subject == f"[kpi-pipeline] {shown} is off track — week 2026-W02"
    # Over the wire every line keeps within RFC 5322's 78 characters: "Subject: " plus 78
    # characters (with non-ASCII ones encoded) is folded onto continuation lines.
    lines = smtp_server.raw[-1].split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Subject: "))
    assert lines[start + 1].startswith((b" ", b"\t"))  # folded


def test_new_series_reads_as_new_and_a_judged_one_as_a_change(slack_server):
    payload = send_to_slack(slack_server, slipped("Conversion rate"))
    assert payload["blocks"][1]["fields"][3]["text"] == "*Status*\nnow off track"
    judged = Alert(**{**slipped("Conversion rate").__dict__, "previous_status": "at_risk"})
    payload = send_to_slack(slack_server, judged)
    assert payload["blocks"][1]["fields"][3]["text"] == "*Status*\nat risk → off track"
