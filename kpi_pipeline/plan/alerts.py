"""The plan's `alerts:` section: where messages go and which status changes deserve one.

Channels name the environment variables holding their settings, never the secrets
themselves; a channel whose variable is unset is simply not used (alerts are still
evaluated and recorded).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kpi_pipeline.plan.base import StrictModel

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
# Grain names as in `models.Grain` (models imports this module, not the other way round).
GrainName = Literal["day", "week", "month", "quarter"]


class SlackChannelConfig(StrictModel):
    """Slack incoming webhook; its URL is a secret read from `webhook_url_env`."""

    webhook_url_env: str = Field(default="KPI_SLACK_WEBHOOK_URL", pattern=ENV_NAME)


class EmailChannelConfig(StrictModel):
    """Email over SMTP; used when the variable named by `host_env` is set."""

    host_env: str = Field(default="KPI_SMTP_HOST", pattern=ENV_NAME)
    port_env: str = Field(default="KPI_SMTP_PORT", pattern=ENV_NAME)
    username_env: str = Field(default="KPI_SMTP_USERNAME", pattern=ENV_NAME)
    password_env: str = Field(default="KPI_SMTP_PASSWORD", pattern=ENV_NAME)
    sender: str = Field(min_length=3)
    recipients: list[str] = Field(min_length=1)
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")


class AlertRule(StrictModel):
    """Which scores may raise an alert, and how long a closed period waits before it can."""

    grains: list[GrainName] = Field(default_factory=lambda: ["week", "month", "quarter"])
    statuses: list[Literal["at_risk", "off_track"]] = Field(
        default_factory=lambda: ["off_track"], min_length=1
    )
    segment_types: list[Literal["all", "tactic", "channel", "device", "audience"]] = Field(
        default_factory=lambda: ["all"], min_length=1
    )
    hold_hours: int = Field(
        default=0, ge=0, description="Hours after a period ends before it may alert."
    )
    renotify_hours: float | None = Field(
        default=None, gt=0, description="Remind of a status still bad after this long."
    )


class AlertsConfig(StrictModel):
    slack: SlackChannelConfig | None = None
    email: EmailChannelConfig | None = None
    rules: list[AlertRule] = Field(default_factory=lambda: [AlertRule()])
    retries: int = Field(default=3, ge=1, description="Delivery attempts per message and run.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First retry delay; doubles.")
    timeout_seconds: float = Field(default=10.0, gt=0)
