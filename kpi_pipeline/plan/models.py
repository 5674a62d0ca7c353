"""Pydantic models of a digital strategic plan: mission, objectives, tactics, KPIs, sources.

The models check shape and types; cross-references (dangling ids, duplicates, dates in the
wrong order) are checked in `checks.py` so each error can point at the exact field.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from kpi_pipeline.plan.alerts import AlertsConfig
from kpi_pipeline.plan.base import Identifier, PlanId, StrictModel
from kpi_pipeline.plan.csv_config import CsvSource
from kpi_pipeline.plan.email_config import EMAIL_MEASURES, EmailSource
from kpi_pipeline.plan.ga4 import Ga4Source, TrafficSource
from kpi_pipeline.plan.quality import QualityConfig
from kpi_pipeline.plan.scoring import ScoringConfig
from kpi_pipeline.plan.session_csv_config import SessionCsvSource


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


class Direction(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class KpiKind(StrEnum):
    CONVERSION_RATE = "conversion_rate"
    ENGAGEMENT_RATE = "engagement_rate"
    BOUNCE_RATE = "bounce_rate"  # sessions not engaged / sessions (1 - engagement rate)
    TASK_COMPLETION_RATE = "task_completion_rate"
    RATIO = "ratio"
    VOLUME = "volume"
    USERS = "users"  # a GA4 user count, requested per period (users are not additive)


RATE_KINDS = frozenset(
    {
        KpiKind.CONVERSION_RATE,
        KpiKind.ENGAGEMENT_RATE,
        KpiKind.BOUNCE_RATE,
        KpiKind.TASK_COMPLETION_RATE,
    }
)

# Numerator and denominator implied by each built-in rate kind.
BUILT_IN_RATE_MEASURES: dict[KpiKind, tuple[str, str]] = {
    KpiKind.CONVERSION_RATE: ("key_events", "sessions"),
    KpiKind.ENGAGEMENT_RATE: ("engaged_sessions", "sessions"),
    KpiKind.BOUNCE_RATE: ("engaged_sessions", "sessions"),  # as a complement: see below
}
# Built-in kinds whose numerator is the denominator minus the measure (not read twice).
COMPLEMENT_KINDS = frozenset({KpiKind.BOUNCE_RATE})

# Measures each kind of source provides (event measures come from CSV event columns or GA4).
WEB_MEASURES = ("sessions", "engaged_sessions", "key_events")

# Measures every traffic source provides, without declaration.
# Email platforms add their campaign measures (emails_sent, email_unique_opens, ...).
BUILT_IN_MEASURES = ("sessions", "engaged_sessions", "key_events", *EMAIL_MEASURES)


# GA4 user metrics a `users` KPI may request (counted per period, never summed from days).
UsersMetric = Literal["totalUsers", "activeUsers", "newUsers"]


class Segment(StrEnum):
    """Dimensions a KPI can be broken down by, besides the whole (`all`)."""

    TACTIC = "tactic"
    CHANNEL = "channel"
    DEVICE = "device"
    AUDIENCE = "audience"  # a column a session-level source declares (e.g. visitor type)


class Channel(StrEnum):
    EMAIL = "email"
    PAID_SEARCH = "paid_search"
    SOCIAL = "social"
    VIDEO = "video"
    CONTENT = "content"
    DISPLAY = "display"
    AFFILIATE = "affiliate"
    ORGANIC_SEARCH = "organic_search"
    REFERRAL = "referral"
    DIRECT = "direct"
    OTHER = "other"


class ToleranceMode(StrEnum):
    RELATIVE = "relative"  # fraction of the expected value
    ABSOLUTE = "absolute"  # in the KPI's own unit (e.g. 0.002 = 0.2 points of a rate)


class UtmMatch(StrictModel):
    """One UTM rule: every given field must match (case-insensitive, `*` is a wildcard)."""

    source: str | None = None
    medium: str | None = None
    campaign: str | None = None

    @model_validator(mode="after")
    def _matches_something(self) -> UtmMatch:
        if self.source is None and self.medium is None and self.campaign is None:
            raise ValueError("a UTM rule needs at least one of source, medium, campaign")
        return self


class Tactic(StrictModel):
    id: Identifier
    title: str | None = None
    channel: Channel
    match: list[UtmMatch] = Field(min_length=1)


class Strategy(StrictModel):
    id: Identifier
    title: str
    tactics: list[Tactic] = Field(default_factory=list)


class Mark(StrictModel):
    """A value at a date: the baseline measured on `as_of`."""

    value: float
    as_of: dt.date


class Target(StrictModel):
    value: float
    by: dt.date


class ComplementOf(StrictModel):
    """A numerator counted as the denominator minus a measure, per day and segment: bounce
    (sessions not engaged), non-converting sessions, abandoned forms (starts not submitted)."""

    complement_of: Identifier


class Kpi(StrictModel):
    id: Identifier
    label: str
    description: str = ""
    kind: KpiKind
    numerator: Identifier | ComplementOf | None = Field(
        default=None,
        description="A measure id, or {complement_of: <measure>}: the denominator minus it.",
    )
    denominator: Identifier | None = None
    measure: Identifier | None = None
    users_metric: UsersMetric | None = Field(
        default=None, description="GA4 user metric of a `users` KPI (e.g. totalUsers)."
    )
    direction: Direction = Direction.INCREASE
    baseline: Mark
    target: Target
    grains: list[Grain] = Field(default_factory=lambda: [Grain.WEEK, Grain.MONTH], min_length=1)
    segments: list[Segment] = Field(default_factory=list)
    tactics: list[Identifier] | None = Field(
        default=None, description="Restrict the KPI to traffic of these tactics."
    )
    tolerance: float = Field(default=0.1, ge=0)
    tolerance_mode: ToleranceMode = ToleranceMode.RELATIVE
    min_denominator: float = Field(default=0, ge=0)
    weight: float = Field(default=1.0, gt=0, description="Weight in its objective's status.")

    @property
    def is_rate(self) -> bool:
        return self.kind in RATE_KINDS

    @property
    def resolved_numerator(self) -> str:
        """Measure summed on top (or the only measure, for volume KPIs); for a complement
        numerator, the measure subtracted from the denominator."""
        if self.kind in BUILT_IN_RATE_MEASURES:
            return BUILT_IN_RATE_MEASURES[self.kind][0]
        if self.kind is KpiKind.VOLUME:
            return self.measure or ""
        if self.kind is KpiKind.USERS:
            return f"ga4:{self.users_metric or ''}"  # never a measure id: not summed from days
        if isinstance(self.numerator, ComplementOf):
            return self.numerator.complement_of
        return self.numerator or ""

    @property
    def numerator_is_complement(self) -> bool:
        """Whether the numerator is the denominator minus `resolved_numerator`."""
        return self.kind in COMPLEMENT_KINDS or isinstance(self.numerator, ComplementOf)

    @property
    def measures(self) -> tuple[str, ...]:
        """Measure ids this KPI reads (numerator, denominator)."""
        if self.kind is KpiKind.USERS:
            return ()
        return tuple(m for m in (self.resolved_numerator, self.resolved_denominator) if m)

    @property
    def resolved_denominator(self) -> str | None:
        if self.kind in BUILT_IN_RATE_MEASURES:
            return BUILT_IN_RATE_MEASURES[self.kind][1]
        if self.kind in (KpiKind.VOLUME, KpiKind.USERS):
            return None
        return self.denominator


class Objective(StrictModel):
    id: Identifier
    title: str
    priority: int = Field(ge=1)
    deadline: dt.date
    description: str = ""
    strategies: list[Strategy] = Field(default_factory=list)
    kpis: list[Kpi] = Field(default_factory=list)


class EventMeasure(StrictModel):
    """A measure counted from events with one name (e.g. form_start)."""

    id: Identifier
    event: str = Field(min_length=1)
    description: str = ""


SourceKind = Literal["csv_exports", "ga4", "email", "session_csvs"]


class Sources(StrictModel):
    csv_exports: list[CsvSource] = Field(default_factory=list)
    ga4: list[Ga4Source] = Field(default_factory=list)
    email: list[EmailSource] = Field(
        default_factory=list, description="Email platforms (Mailchimp, Klaviyo): campaigns."
    )
    session_csvs: list[SessionCsvSource] = Field(
        default_factory=list, description="Session-level CSV files (one row per visit)."
    )
    traffic_source: TrafficSource | None = Field(
        default=None, description="Which kind feeds the KPIs when both are declared."
    )

    def feeds_kpis(self, kind: SourceKind) -> bool:
        """Whether sources of `kind` feed the KPIs. CSV exports and GA4 both count sessions:
        the only declared one feeds them, or the one `traffic_source` chose. Email and
        session-level sources always feed them (they count different things)."""
        if kind not in ("csv_exports", "ga4"):
            return True
        declared = bool(self.csv_exports) if kind == "csv_exports" else bool(self.ga4)
        return declared and (self.traffic_source is None or self.traffic_source == kind)

    def roles(self) -> list[tuple[str, SourceKind, bool]]:
        """(source id, kind, feeds the KPIs) of every declared source: the one place that
        decides which rows count, written as `plan.sources` for the SQL models to join on."""
        kinds: tuple[SourceKind, ...] = ("csv_exports", "ga4", "email", "session_csvs")
        return [
            (source.id, kind, self.feeds_kpis(kind))
            for kind in kinds
            for source in getattr(self, kind)
        ]


class Plan(StrictModel):
    id: PlanId | None = Field(
        default=None,
        description="Stable id of the plan: its rows live in warehouse schemas <id>_raw, "
        "<id>_marts... Default: the plan file's name (demo.yaml -> demo).",
    )
    organization: str
    mission: str
    timezone: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    history_start: dt.date = Field(description="First day the pipeline loads (partition start).")
    sources: Sources
    measures: list[EventMeasure] = Field(default_factory=list)
    objectives: list[Objective] = Field(min_length=1)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Data checks: severities and thresholds."
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_+\-/0-9]+", value):
            raise ValueError(f"unknown IANA timezone {value!r}")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def iter_kpis(self) -> list[tuple[Objective, Kpi]]:
        return [(objective, kpi) for objective in self.objectives for kpi in objective.kpis]

    def kpi_sources(self, kpi: Kpi) -> list[str]:
        """Ids of the sources feeding the KPIs that provide `kpi`'s measures: a period of
        the KPI is complete when every one of them covered each of its days."""
        sources = self.sources
        web = [
            *(s.id for s in sources.csv_exports if sources.feeds_kpis("csv_exports")),
            *(s.id for s in sources.ga4 if sources.feeds_kpis("ga4")),
        ]
        if kpi.kind is KpiKind.USERS:
            return [s.id for s in sources.ga4 if sources.feeds_kpis("ga4")]
        events = {m.id: m.event for m in self.measures}
        found: list[str] = []
        for measure in kpi.measures:
            if measure in WEB_MEASURES:
                found += web
                found += [
                    s.id
                    for s in sources.session_csvs
                    if measure != "engaged_sessions" or s.engaged is not None
                ]
            elif measure in EMAIL_MEASURES:
                found += [s.id for s in sources.email]
            elif measure in events:
                found += [
                    s.id
                    for s in sources.csv_exports
                    if sources.feeds_kpis("csv_exports") and events[measure] in s.event_columns
                ]
                found += [s.id for s in sources.ga4 if sources.feeds_kpis("ga4")]
        return list(dict.fromkeys(found))

    def iter_tactics(self) -> list[tuple[Objective, Strategy, Tactic]]:
        return [
            (objective, strategy, tactic)
            for objective in self.objectives
            for strategy in objective.strategies
            for tactic in strategy.tactics
        ]
