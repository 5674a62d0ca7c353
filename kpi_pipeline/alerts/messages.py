"""An alert worded for each channel: Slack Block Kit and a plain-text + HTML email.

Every text is cut to its channel's documented limit, ending with "…" when cut, so a long KPI
label can never make a channel refuse the message (Slack answers 400 `invalid_blocks` to a
header over 150 characters). Headlines shorten the KPI label first, so the status and the
period stay readable.
"""

from __future__ import annotations

import html
from email.header import Header
from email.message import EmailMessage

from kpi_pipeline.alerts.model import Alert, AlertKind

ELLIPSIS = "…"

# Slack Block Kit (docs.slack.dev/reference/block-kit): header block text, section block
# text and a section's fields, context text objects, blocks per message.
SLACK_HEADER_MAX = 150
SLACK_SECTION_TEXT_MAX = 3000
SLACK_FIELD_TEXT_MAX = 2000
SLACK_FIELDS_MAX = 10
SLACK_CONTEXT_TEXT_MAX = 3000
SLACK_BLOCKS_MAX = 50
# The top-level `text` is the notification fallback. Slack truncates message text past
# 40,000 characters; a notification needs far less, so we keep it to a text object's 3,000.
SLACK_FALLBACK_MAX = 3000
# RFC 5322 2.1.1: header lines SHOULD stay within 78 characters (998 at most). A subject of
# 78 characters reads whole in mail clients; its header line folds (2.2.3) after "Subject:".
EMAIL_SUBJECT_MAX = 78

_ICONS = {
    AlertKind.SLIPPED: ":red_circle:",
    AlertKind.REMINDER: ":large_orange_circle:",
    AlertKind.RECOVERED: ":large_green_circle:",
    AlertKind.PIPELINE_FAILURE: ":rotating_light:",
}


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its first limit - 1 and "…"."""
    if limit < 1:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def slack_escape(text: str) -> str:
    """The three characters Slack's mrkdwn and fallback text need escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate_escaped(text: str, limit: int) -> str:
    """Escape, then cut to `limit` without leaving half an entity (`&am…`) behind."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def words(status: str) -> str:
    """`off_track` -> `off track`."""
    return status.replace("_", " ")


def status_change(alert: Alert) -> str:
    """`on track → off track`; a series never judged before reads `now off track`."""
    if alert.previous_status is None:
        return f"now {words(alert.status)}"
    return f"{words(alert.previous_status)} → {words(alert.status)}"


def number(value: float | None, kpi_kind: str) -> str:
    if value is None:
        return "-"
    if kpi_kind in ("volume", "users"):
        return f"{value:,.0f}"
    if kpi_kind.endswith("_rate"):
        return f"{value:.2%}"
    return f"{value:.4g}"


def fitted(template: str, label: str, limit: int, slack: bool = False) -> str:
    """`template` with `{label}` filled, the label shortened (with "…") so the whole text
    fits in `limit` characters; cut from the end when even an empty label would not fit.
    With `slack`, the label is escaped for mrkdwn (the template must be escaped already)."""
    fixed = len(template.replace("{label}", ""))
    whole = template.replace("{label}", slack_escape(label) if slack else label)
    if len(whole) <= limit:
        return whole
    if fixed >= limit:
        return truncate(whole, limit)
    room = limit - fixed
    short = _truncate_escaped(label, room) if slack else truncate(label, room)
    return template.replace("{label}", short)


def headline_template(alert: Alert) -> str:
    """The headline with `{label}` where the KPI label goes."""
    if alert.kind is AlertKind.PIPELINE_FAILURE:
        return "kpi-pipeline run failed"
    status = words(alert.status)
    if alert.kind is AlertKind.RECOVERED:
        return f"{{label}} is back {status}"
    if alert.kind is AlertKind.REMINDER:
        return f"{{label}} is still {status}"
    return f"{{label}} is {status}"


def headline(alert: Alert) -> str:
    return headline_template(alert).replace("{label}", alert.kpi_label)


def facts(alert: Alert) -> list[tuple[str, str]]:
    """(label, text) pairs shared by every channel, in reading order."""
    if alert.kind is AlertKind.PIPELINE_FAILURE:
        return [("Failure", alert.detail or "")]
    k = alert.kpi_kind
    segment = "" if alert.segment_type == "all" else f" ({alert.segment_type} {alert.segment})"
    target = number(alert.target, k)
    if alert.target_date:
        target += f" by {alert.target_date}"
    pairs = [
        ("KPI", alert.kpi_label + segment),
        ("Objective", alert.objective_title),
        ("Period", f"{alert.grain} {alert.period_label}"),
        ("Status", status_change(alert)),
        ("Value", f"{number(alert.value, k)} vs expected {number(alert.expected, k)}"),
        ("Target", target),
    ]
    if alert.ci_low is not None and alert.ci_high is not None:
        pairs.append(("Interval", f"{number(alert.ci_low, k)} – {number(alert.ci_high, k)}"))
    if alert.forecast is not None:
        forecast = f"{number(alert.forecast, k)}"
        if alert.forecast_low is not None and alert.forecast_high is not None:
            forecast += f" ({number(alert.forecast_low, k)} – {number(alert.forecast_high, k)})"
        if alert.projected_status:
            forecast += f", projected {words(alert.projected_status)}"
        pairs.append(("Forecast at deadline", forecast))
    return pairs


def _labelled(label: str, text: str, limit: int) -> str:
    head = f"*{label}*\n"
    return head + _truncate_escaped(text, limit - len(head))


def slack_payload(alert: Alert) -> dict:
    """Block Kit message for an incoming webhook, every text within Slack's limits;
    `text` is the notification fallback."""
    template = headline_template(alert)
    icon = _ICONS[alert.kind]
    header = fitted(f"{icon} {template}", alert.kpi_label, SLACK_HEADER_MAX)
    if alert.kind is AlertKind.PIPELINE_FAILURE:
        fallback = truncate(slack_escape(template), SLACK_FALLBACK_MAX)
        ((label, detail),) = facts(alert)
        body = {
            "type": "section",
            "text": _mrkdwn(_labelled(label, detail, SLACK_SECTION_TEXT_MAX)),
        }
    else:
        period = f": {alert.grain} {alert.period_label}"
        fallback = fitted(
            slack_escape(template + period), alert.kpi_label, SLACK_FALLBACK_MAX, slack=True
        )
        fields = facts(alert)[:SLACK_FIELDS_MAX]
        body = {
            "type": "section",
            "fields": [_mrkdwn(_labelled(k, v, SLACK_FIELD_TEXT_MAX)) for k, v in fields],
        }
    context = _truncate_escaped(f"kpi-pipeline · {alert.alert_id}", SLACK_CONTEXT_TEXT_MAX)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        body,
        {"type": "context", "elements": [_mrkdwn(context)]},
    ]
    return {"text": fallback, "blocks": blocks[:SLACK_BLOCKS_MAX]}


def _mrkdwn(text: str) -> dict:
    return {"type": "mrkdwn", "text": text}


def email_subject(alert: Alert) -> str:
    """`[kpi-pipeline] <headline> — <grain> <period>` in at most 78 characters."""
    template = f"[kpi-pipeline] {headline_template(alert)}"
    if alert.kind is not AlertKind.PIPELINE_FAILURE:
        template += f" — {alert.grain} {alert.period_label}"
    return fitted(template, alert.kpi_label, EMAIL_SUBJECT_MAX)


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    """A multipart/alternative email: plain text first, the same facts as an HTML table."""
    title = headline(alert)
    pairs = facts(alert)
    message = EmailMessage()
    _set_folded(message, "Subject", email_subject(alert))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    _set_folded(message, "X-KPI-Alert-Id", alert.alert_id)
    width = max(len(label) for label, _ in pairs)
    plain = [title, "", *(f"{label.ljust(width)}  {text}" for label, text in pairs)]
    message.set_content("\n".join(plain) + "\n")
    rows = "".join(
        f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(text)}</td></tr>'
        for label, text in pairs
    )
    message.add_alternative(
        f"<html><body><h2>{html.escape(title)}</h2><table>{rows}</table></body></html>\n",
        subtype="html",
    )
    return message


def _set_folded(message: EmailMessage, name: str, value: str) -> None:
    """Store a header folded to 78-character lines (RFC 5322 2.2.3), non-ASCII text as
    RFC 2047 encoded words. The email package's own folder leaves a space before the fold
    next to an encoded word, so the subject would read back with a double space."""
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, maxlinelen=78, header_name=name).encode(linesep="\n")
    message.set_raw(name, folded)
