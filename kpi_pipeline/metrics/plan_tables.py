"""The plan as small tables, so the SQL models can join KPIs, tactics and periods to data."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.periods import build_calendar
from kpi_pipeline.plan.models import Plan

UNATTRIBUTED = "unattributed"

PLAN_KPIS = TableSpec(
    "plan",
    "kpis",
    (
        ("kpi_id", "text"),
        ("objective_id", "text"),
        ("objective_title", "text"),
        ("objective_priority", "integer"),
        ("kpi_label", "text"),
        ("kind", "text"),
        ("direction", "text"),
        ("numerator_measure", "text"),
        ("denominator_measure", "text"),
        ("is_rate", "boolean"),
        ("numerator_is_complement", "boolean"),
    ),
    grain="one row per KPI (a complement numerator is the denominator minus its measure)",
    keys=("kpi_id",),
)
PLAN_KPI_GRAINS = TableSpec(
    "plan",
    "kpi_grains",
    (("kpi_id", "text"), ("grain", "text")),
    grain="one row per KPI and grain it is reported at",
    keys=("kpi_id", "grain"),
)
PLAN_KPI_SEGMENTS = TableSpec(
    "plan",
    "kpi_segments",
    (("kpi_id", "text"), ("segment_type", "text")),
    grain="one row per KPI and breakdown ('all' = the whole)",
    keys=("kpi_id", "segment_type"),
)
PLAN_KPI_TACTICS = TableSpec(
    "plan",
    "kpi_tactics",
    (("kpi_id", "text"), ("tactic_id", "text")),
    grain="one row per KPI and tactic whose traffic counts for it",
    keys=("kpi_id", "tactic_id"),
)
PLAN_TACTIC_RULES = TableSpec(
    "plan",
    "tactic_rules",
    (
        ("rule_order", "integer"),
        ("tactic_id", "text"),
        ("channel", "text"),
        ("strategy_id", "text"),
        ("objective_id", "text"),
        ("source_pattern", "text"),
        ("medium_pattern", "text"),
        ("campaign_pattern", "text"),
    ),
    grain="one row per UTM rule; the first matching rule (lowest rule_order) wins",
    keys=("rule_order",),
)
PLAN_MEASURES = TableSpec(
    "plan",
    "measures",
    (("measure_id", "text"), ("event_name", "text")),
    grain="one row per measure counted from events",
    keys=("measure_id",),
)
PLAN_CALENDAR = TableSpec(
    "plan",
    "calendar",
    (
        ("date", "date"),
        ("grain", "text"),
        ("period_start", "date"),
        ("period_end", "date"),
        ("period_label", "text"),
    ),
    grain="one row per date and grain",
    keys=("date", "grain"),
)

PLAN_SOURCES = TableSpec(
    "plan",
    "sources",
    (("source_id", "text"), ("source_kind", "text"), ("feeds_kpis", "boolean")),
    grain="one row per declared source; the SQL models count only rows of sources that "
    "feed the KPIs (rows of other sources stay in raw, unread)",
    keys=("source_id",),
)

PLAN_KPI_SOURCES = TableSpec(
    "plan",
    "kpi_sources",
    (("kpi_id", "text"), ("source_id", "text")),
    grain="one row per KPI and source feeding its measures: a KPI's day is covered when "
    "every one of its sources covered it",
    keys=("kpi_id", "source_id"),
)

PLAN_TABLES = (
    PLAN_SOURCES,
    PLAN_KPI_SOURCES,
    PLAN_KPIS,
    PLAN_KPI_GRAINS,
    PLAN_KPI_SEGMENTS,
    PLAN_KPI_TACTICS,
    PLAN_TACTIC_RULES,
    PLAN_MEASURES,
    PLAN_CALENDAR,
)


def glob_to_like(pattern: str | None) -> str | None:
    """UTM glob (`cart_*`, case-insensitive) -> SQL LIKE pattern with `\\` as escape."""
    if pattern is None:
        return None
    escaped = pattern.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def plan_tables(plan: Plan, calendar_through: dt.date) -> dict[str, pd.DataFrame]:
    """Frames keyed by table name (see the specs above); the calendar runs from
    `history_start` to `calendar_through` or one year past the last deadline, whichever is later.
    """
    kpis = plan.iter_kpis()
    tactic_ids = [tactic.id for _, _, tactic in plan.iter_tactics()]
    last_date = max([o.deadline for o in plan.objectives] + [k.target.by for _, k in kpis])
    through = max(calendar_through, last_date + dt.timedelta(days=366))
    return {
        "sources": pd.DataFrame(plan.sources.roles(), columns=PLAN_SOURCES.column_names),
        "kpis": pd.DataFrame(
            [
                (
                    k.id,
                    o.id,
                    o.title,
                    o.priority,
                    k.label,
                    k.kind.value,
                    k.direction.value,
                    k.resolved_numerator,
                    k.resolved_denominator,
                    k.is_rate,
                    k.numerator_is_complement,
                )
                for o, k in kpis
            ],
            columns=PLAN_KPIS.column_names,
        ),
        "kpi_sources": pd.DataFrame(
            [(k.id, source_id) for _, k in kpis for source_id in plan.kpi_sources(k)],
            columns=PLAN_KPI_SOURCES.column_names,
        ),
        "kpi_grains": pd.DataFrame(
            [(k.id, g.value) for _, k in kpis for g in k.grains],
            columns=PLAN_KPI_GRAINS.column_names,
        ),
        "kpi_segments": pd.DataFrame(
            [(k.id, s) for _, k in kpis for s in ("all", *(s.value for s in k.segments))],
            columns=PLAN_KPI_SEGMENTS.column_names,
        ),
        "kpi_tactics": pd.DataFrame(
            [
                (k.id, t)
                for _, k in kpis
                for t in (k.tactics if k.tactics is not None else [*tactic_ids, UNATTRIBUTED])
            ],
            columns=PLAN_KPI_TACTICS.column_names,
        ),
        "tactic_rules": pd.DataFrame(
            [
                (
                    order,
                    t.id,
                    t.channel.value,
                    s.id,
                    o.id,
                    glob_to_like(rule.source),
                    glob_to_like(rule.medium),
                    glob_to_like(rule.campaign),
                )
                for order, (o, s, t, rule) in enumerate(
                    (o, s, t, rule) for o, s, t in plan.iter_tactics() for rule in t.match
                )
            ],
            columns=PLAN_TACTIC_RULES.column_names,
        ),
        "measures": pd.DataFrame(
            [(m.id, m.event) for m in plan.measures], columns=PLAN_MEASURES.column_names
        ),
        "calendar": build_calendar(plan.history_start, through, plan.fiscal_year_start_month),
    }
