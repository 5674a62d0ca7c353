"""The plan's `quality:` section: how strict the data checks are, and how loud.

Every check has a default severity: `error` blocks what follows in the run (scoring and
alerts wait for clean data), `warn` records the failure and holds the periods it touches
(their `quality_flags` name the check, so alerts wait) without stopping the run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kpi_pipeline.plan.base import StrictModel

Severity = Literal["warn", "error"]

# Every check's name and default severity (see kpi_pipeline/checks/suites.py).
DEFAULT_SEVERITIES: dict[str, Severity] = {
    "keys_unique": "error",
    "keys_not_null": "error",
    "counts_non_negative": "error",
    "engaged_le_sessions": "error",
    "key_events_plausible": "warn",
    "events_plausible": "warn",
    "dates_in_history": "error",
    "rate_in_unit_interval": "warn",
    "numerator_le_denominator": "warn",
    "periods_complete": "warn",
    "snapshots_append_only": "error",
    "freshness": "warn",
    "volume_anomaly": "warn",
    "quarantine_rate": "warn",
}

# The names the plan may override: exactly the checks above, listed once.
CheckName = Literal[tuple(DEFAULT_SEVERITIES)]  # type: ignore[valid-type]


class QualityConfig(StrictModel):
    enabled: bool = Field(
        default=True, description="Run the data checks (off: no checks, e.g. to measure them)."
    )
    severity: dict[CheckName, Severity] = Field(
        default_factory=dict, description="Override a check's severity: warn or error."
    )
    volume_window_days: int = Field(
        default=28, ge=7, le=366, description="Trailing days a day's sessions are compared with."
    )
    volume_band_mads: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="A day is anomalous beyond this many scaled MADs from the trailing median.",
    )
    volume_min_history_days: int = Field(
        default=14, ge=3, le=366, description="Days of history needed before judging a day."
    )
    quarantine_rate_max: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of a day's rows quarantined."
    )
    freshness_lag_days: int = Field(
        default=1,
        ge=0,
        le=60,
        description="Days a source may lag behind yesterday (GA4 settles within a day or two).",
    )
    events_per_session_max: float = Field(
        default=10.0, gt=0, le=1e6, description="Key or task events per session still plausible."
    )

    def severity_of(self, check: str) -> Severity:
        return self.severity.get(check, DEFAULT_SEVERITIES[check])  # type: ignore[arg-type]
