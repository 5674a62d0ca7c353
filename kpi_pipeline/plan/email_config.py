"""How a plan declares email platforms: which account, which key (by variable name), which lists.

Each email source reads one Mailchimp or Klaviyo account's campaign reports. The API key is
never in the plan: the plan names the environment variable that holds it, and the Dagster
resource reads it through `dg.EnvVar`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kpi_pipeline.plan.base import ALLOW_MISSING_DAYS_DESCRIPTION, Identifier, StrictModel

EmailPlatform = Literal["mailchimp", "klaviyo"]

# The real API hosts. Mailchimp's depends on the account's data centre, the suffix of its
# API key (`...-us6` -> `us6`): `{dc}` is filled in from the key at run time.
DEFAULT_BASE_URLS: dict[str, str] = {
    "mailchimp": "https://{dc}.api.mailchimp.com/3.0",
    "klaviyo": "https://a.klaviyo.com/api",
}
DEFAULT_KEY_ENV_VARS: dict[str, str] = {
    "mailchimp": "MAILCHIMP_API_KEY",
    "klaviyo": "KLAVIYO_API_KEY",
}

# Additive measures every email source provides (see int_email__measures.sql).
EMAIL_MEASURES = (
    "emails_sent",
    "emails_delivered",
    "email_unique_opens",
    "email_unique_clicks",
    "email_unsubscribes",
    "email_bounces",
)


class EmailSource(StrictModel):
    """One email platform account whose campaign reports feed email KPIs."""

    id: Identifier
    platform: EmailPlatform
    base_url: str = Field(
        default="",
        description="API root; empty means the platform's real host (tests point it at a "
        "local server).",
    )
    api_key_env_var: str = Field(
        default="",
        pattern=r"^([A-Z_][A-Z0-9_]*)?$",
        description="Environment variable holding the API key (never the key itself); "
        "default MAILCHIMP_API_KEY or KLAVIYO_API_KEY.",
    )
    list_ids: list[str] = Field(
        default_factory=list,
        description="Mailchimp audiences to read (campaigns and list growth); empty means "
        "every audience's campaigns and no list growth.",
    )
    conversion_metric_id: str | None = Field(
        default=None,
        description="Klaviyo: the metric its values reports need for conversion statistics "
        "(e.g. Placed Order's id).",
    )
    utm_source: str | None = Field(
        default=None,
        description="The utm_source the platform puts on campaign links, when the API does not "
        "say (Mailchimp); default: the platform name.",
    )
    exclude_machine_opens: bool = Field(
        default=True,
        description="Leave Apple Mail Privacy Protection / machine opens out of unique opens "
        "where the platform flags them.",
    )
    allow_missing_days: bool = Field(default=False, description=ALLOW_MISSING_DAYS_DESCRIPTION)
    lookback_days: int = Field(
        default=7,
        ge=0,
        le=60,
        description="Campaigns sent this many days before the run's first day are re-read: "
        "opens and clicks keep arriving after the send.",
    )
    page_size: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="before")
    @classmethod
    def _platform_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("platform") in DEFAULT_BASE_URLS:
            data = dict(data)
            data.setdefault("base_url", DEFAULT_BASE_URLS[data["platform"]])
            data.setdefault("api_key_env_var", DEFAULT_KEY_ENV_VARS[data["platform"]])
            if not data["base_url"]:
                data["base_url"] = DEFAULT_BASE_URLS[data["platform"]]
            if not data["api_key_env_var"]:
                data["api_key_env_var"] = DEFAULT_KEY_ENV_VARS[data["platform"]]
        return data

    @model_validator(mode="after")
    def _platform_needs(self) -> EmailSource:
        if self.platform == "klaviyo" and not self.conversion_metric_id:
            raise ValueError(
                "a klaviyo source needs conversion_metric_id: Klaviyo's campaign values "
                "reports require one (the id of a metric such as Placed Order)"
            )
        if self.platform == "klaviyo" and self.list_ids:
            raise ValueError("list_ids applies to mailchimp sources only")
        if not self.base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("base_url must be https:// (or http:// on the loopback, for tests)")
        return self
