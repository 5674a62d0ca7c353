"""What an alert says: one status change of one KPI series in one closed period."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum


class AlertKind(StrEnum):
    SLIPPED = "slipped"  # worse than the status last sent
    RECOVERED = "recovered"  # back on track (or achieved) after a bad status was sent
    REMINDER = "reminder"  # still bad after the rule's re-notification interval
    PIPELINE_FAILURE = "pipeline_failure"


# How bad a status is, for "worse than what was last sent".
SEVERITY = {
    "achieved": 0,
    "on_track": 0,
    "insufficient_data": 0,
    "at_risk": 1,
    "off_track": 2,
}
GOOD_STATUSES = frozenset({"on_track", "achieved"})


def severity(status: str | None) -> int:
    return SEVERITY.get(status or "on_track", 0)


@dataclass(frozen=True)
class Alert:
    """Everything a reader needs to judge the change, without opening the warehouse."""

    alert_id: str
    kind: AlertKind
    kpi_id: str
    kpi_label: str
    kpi_kind: str
    objective_title: str
    grain: str
    segment_type: str
    segment: str
    period_start: str
    period_label: str
    previous_status: str | None
    status: str
    value: float | None = None
    expected: float | None = None
    target: float | None = None
    target_date: str | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    forecast: float | None = None
    forecast_low: float | None = None
    forecast_high: float | None = None
    projected_status: str | None = None
    detail: str | None = None  # pipeline failures: job, run and error

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["kind"] = AlertKind(data["kind"])
        return cls(**data)


@dataclass(frozen=True)
class KpiWording:
    """What the plan currently calls a KPI: its label, objective and target date."""

    kpi_label: str
    objective_title: str
    target_date: str | None


def with_current_wording(alert: Alert, wording: Mapping[str, KpiWording]) -> Alert:
    """`alert` as the plan words it now: a queued alert sent after the plan renamed its KPI
    (or moved its deadline) carries the new words, not the ones of the day it was decided.
    A KPI no longer in the plan keeps the stored words."""
    current = wording.get(alert.kpi_id) if alert.kpi_id else None
    if current is None:
        return alert
    return dataclasses.replace(
        alert,
        kpi_label=current.kpi_label,
        objective_title=current.objective_title,
        target_date=current.target_date,
    )


def clean_number(value: object) -> float | None:
    """A float for JSON, or None for missing values (NaN, None, pandas NA)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
