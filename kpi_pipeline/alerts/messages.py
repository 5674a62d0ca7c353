"""An alert worded for each channel: Slack Block Kit and a plain-text + HTML email."""

from __future__ import annotations

import html
from email.message import EmailMessage

from kpi_pipeline.alerts.model import Alert, AlertKind

_ICONS = {
    AlertKind.SLIPPED: ":red_circle:",
    AlertKind.REMINDER: ":large_orange_circle:",
    AlertKind.RECOVERED: ":large_green_circle:",
    AlertKind.PIPELINE_FAILURE: ":rotating_light:",
}


def words(status: str | None) -> str:
    """`off_track` -> `off track`; no status yet reads as `on track` (the implied start)."""
    return (status or "on_track").replace("_", " ")


def number(value: float | None, kpi_kind: str) -> str:
    if value is None:
        return "-"
    if kpi_kind in ("volume", "users"):
        return f"{value:,.0f}"
    if kpi_kind.endswith("_rate"):
        return f"{value:.2%}"
    return f"{value:.4g}"


def headline(alert: Alert) -> str:
    if alert.kind is AlertKind.PIPELINE_FAILURE:
        return "kpi-pipeline run failed"
    if alert.kind is AlertKind.RECOVERED:
        return f"{alert.kpi_label} is back {words(alert.status)}"
    if alert.kind is AlertKind.REMINDER:
        return f"{alert.kpi_label} is still {words(alert.status)}"
    return f"{alert.kpi_label} is {words(alert.status)}"


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
        ("Status", f"{words(alert.previous_status)} → {words(alert.status)}"),
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


def slack_payload(alert: Alert) -> dict:
    """Block Kit message for an incoming webhook; `text` is the notification fallback."""
    title = headline(alert)
    fallback = title
    if alert.kind is not AlertKind.PIPELINE_FAILURE:
        fallback = f"{title}: {alert.grain} {alert.period_label}"
    return {
        "text": fallback,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"{_ICONS[alert.kind]} {title}"},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{text}"} for label, text in facts(alert)
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"kpi-pipeline · {alert.alert_id}"}],
            },
        ],
    }


def email_message(alert: Alert, sender: str, recipients: list[str]) -> EmailMessage:
    """A multipart/alternative email: plain text first, the same facts as an HTML table."""
    title = headline(alert)
    subject = f"[kpi-pipeline] {title}"
    if alert.kind is not AlertKind.PIPELINE_FAILURE:
        subject += f" — {alert.grain} {alert.period_label}"
    pairs = facts(alert)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["X-KPI-Alert-Id"] = alert.alert_id
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
