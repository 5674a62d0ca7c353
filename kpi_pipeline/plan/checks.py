"""Cross-reference checks a single field validator cannot make.

Each problem is returned with the path of the field at fault, so the loader can point the
user at the exact line of the YAML file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kpi_pipeline.plan.models import (
    BUILT_IN_MEASURES,
    BUILT_IN_RATE_MEASURES,
    ComplementOf,
    Kpi,
    KpiKind,
    Plan,
    Segment,
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class PlanProblem:
    path: Path
    message: str


def check_plan(plan: Plan) -> list[PlanProblem]:
    """Return every semantic problem of a plan whose fields are individually valid."""
    return [
        *_duplicate_ids(plan),
        *_kpi_problems(plan),
        *_measure_problems(plan),
        *_traffic_source_problems(plan),
    ]


def _duplicate_ids(plan: Plan) -> Iterator[PlanProblem]:
    def first_seen_check(items: list[tuple[Path, str]], what: str) -> Iterator[PlanProblem]:
        seen: dict[str, Path] = {}
        for path, ident in items:
            if ident in seen:
                yield PlanProblem(
                    (*path, "id"),
                    f"duplicate {what} id {ident!r} (first declared at {format_path(seen[ident])})",
                )
            else:
                seen[ident] = path

    objectives = [(("objectives", i), o.id) for i, o in enumerate(plan.objectives)]
    strategies = [
        (("objectives", i, "strategies", j), s.id)
        for i, o in enumerate(plan.objectives)
        for j, s in enumerate(o.strategies)
    ]
    tactics = [
        (("objectives", i, "strategies", j, "tactics", k), t.id)
        for i, o in enumerate(plan.objectives)
        for j, s in enumerate(o.strategies)
        for k, t in enumerate(s.tactics)
    ]
    kpis = [
        (("objectives", i, "kpis", j), k.id)
        for i, o in enumerate(plan.objectives)
        for j, k in enumerate(o.kpis)
    ]
    measures = [(("measures", i), m.id) for i, m in enumerate(plan.measures)]
    sources = [
        (("sources", "csv_exports", i), s.id) for i, s in enumerate(plan.sources.csv_exports)
    ] + [(("sources", "ga4", i), s.id) for i, s in enumerate(plan.sources.ga4)]
    sources += [(("sources", "email", i), s.id) for i, s in enumerate(plan.sources.email)]
    sources += [
        (("sources", "session_csvs", i), s.id) for i, s in enumerate(plan.sources.session_csvs)
    ]
    yield from first_seen_check(objectives, "objective")
    yield from first_seen_check(strategies, "strategy")
    yield from first_seen_check(tactics, "tactic")
    yield from first_seen_check(kpis, "KPI")
    yield from first_seen_check(measures, "measure")
    yield from first_seen_check(sources, "source")
    for path, ident in measures:
        if ident in BUILT_IN_MEASURES:
            yield PlanProblem((*path, "id"), f"measure id {ident!r} is built in; pick another id")


def _kpi_problems(plan: Plan) -> Iterator[PlanProblem]:
    measure_ids = set(BUILT_IN_MEASURES) | {m.id for m in plan.measures}
    tactic_ids = {t.id for _, _, t in plan.iter_tactics()}
    known_measures = ", ".join(sorted(measure_ids))
    for i, objective in enumerate(plan.objectives):
        for j, kpi in enumerate(objective.kpis):
            at: Path = ("objectives", i, "kpis", j)
            if kpi.baseline.as_of >= kpi.target.by:
                yield PlanProblem(
                    (*at, "target", "by"),
                    f"target date {kpi.target.by} must be after baseline.as_of "
                    f"{kpi.baseline.as_of}",
                )
            if kpi.is_rate:
                for part in ("baseline", "target"):
                    value = getattr(kpi, part).value
                    if not 0 <= value <= 1:
                        yield PlanProblem(
                            (*at, part, "value"),
                            f"{kpi.kind.value} is a rate: {part} value {value} is outside [0, 1] "
                            "(write rates as fractions: 25 % is 0.25)",
                        )
            yield from _kpi_measure_fields(kpi.kind, kpi, at, measure_ids, known_measures)
            for k, tactic in enumerate(kpi.tactics or []):
                if tactic not in tactic_ids:
                    yield PlanProblem(
                        (*at, "tactics", k), f"unknown tactic {tactic!r}: no tactic has this id"
                    )
            if kpi.tactics is not None and not kpi.tactics:
                yield PlanProblem((*at, "tactics"), "an empty tactic list matches no traffic")
            if kpi.kind in (KpiKind.VOLUME, KpiKind.USERS) and len(kpi.grains) > 1:
                yield PlanProblem(
                    (*at, "grains"),
                    f"a {kpi.kind.value} KPI's baseline and target are per period of one grain: "
                    "list exactly one",
                )
            yield from _month_dated_problems(plan, kpi, at)
            if kpi.kind is KpiKind.USERS:
                yield from _users_kpi_problems(plan, kpi, at)
            elif kpi.users_metric is not None:
                yield PlanProblem(
                    (*at, "users_metric"), f"`users_metric` is not used for a {kpi.kind.value} KPI"
                )
            if len(set(kpi.grains)) != len(kpi.grains):
                yield PlanProblem((*at, "grains"), "a grain is listed twice")
            if len(set(kpi.segments)) != len(kpi.segments):
                yield PlanProblem((*at, "segments"), "a segment is listed twice")


def _kpi_measure_fields(
    kind: KpiKind, kpi: Kpi, at: Path, measure_ids: set[str], known: str
) -> Iterator[PlanProblem]:
    needs = {
        KpiKind.CONVERSION_RATE: set(),
        KpiKind.ENGAGEMENT_RATE: set(),
        KpiKind.BOUNCE_RATE: set(),
        KpiKind.TASK_COMPLETION_RATE: {"numerator", "denominator"},
        KpiKind.RATIO: {"numerator", "denominator"},
        KpiKind.VOLUME: {"measure"},
        KpiKind.USERS: set(),
    }[kind]
    for field in ("numerator", "denominator", "measure"):
        value = getattr(kpi, field)
        at_field: Path = (*at, field)
        if isinstance(value, ComplementOf):
            if kind not in (KpiKind.TASK_COMPLETION_RATE, KpiKind.RATIO):
                yield PlanProblem(
                    (*at_field, "complement_of"),
                    f"a complement numerator needs a task_completion_rate or ratio KPI, not "
                    f"{kind.value}",
                )
            value, at_field = value.complement_of, (*at_field, "complement_of")
        if field in needs and value is None:
            yield PlanProblem((*at, field), f"a {kind.value} KPI needs `{field}` (a measure id)")
        elif field not in needs and value is not None:
            implied_by_kind = kind in BUILT_IN_RATE_MEASURES and field != "measure"
            implied = "is implied by the kind" if implied_by_kind else "is not used"
            yield PlanProblem((*at, field), f"`{field}` {implied} for a {kind.value} KPI")
        elif value is not None and value not in measure_ids:
            yield PlanProblem(at_field, f"unknown measure {value!r}; known: {known}")


def _month_dated_problems(plan: Plan, kpi: Kpi, at: Path) -> Iterator[PlanProblem]:
    """A source dated by month (a month-name column) cannot tell days or weeks apart."""
    month_dated = {
        s.id for s in plan.sources.session_csvs if s.period.format == "month_name"
    } & set(plan.kpi_sources(kpi))
    if not month_dated:
        return
    for k, grain in enumerate(kpi.grains):
        if grain.value in ("day", "week"):
            yield PlanProblem(
                (*at, "grains", k),
                f"source {sorted(month_dated)[0]!r} dates its rows by month: it cannot feed a "
                f"{grain.value} grain (use month or quarter)",
            )


def _users_kpi_problems(plan: Plan, kpi: Kpi, at: Path) -> Iterator[PlanProblem]:
    """A user count comes from GA4, per period, whole or by device only."""
    if kpi.users_metric is None:
        yield PlanProblem(
            (*at, "users_metric"),
            "a users KPI needs `users_metric`: totalUsers, activeUsers or newUsers",
        )
    if not plan.sources.feeds_kpis("ga4"):
        yield PlanProblem(
            (*at, "kind"),
            "a users KPI is requested from GA4: declare a GA4 source that feeds the KPIs "
            "(sources.ga4, and traffic_source: ga4 when CSV exports are declared too)",
        )
    if kpi.tactics is not None:
        yield PlanProblem(
            (*at, "tactics"),
            "a users KPI counts every user of the property: users are not additive across "
            "UTM combinations, so it cannot be restricted to tactics",
        )
    for k, segment in enumerate(kpi.segments):
        if segment is not Segment.DEVICE:
            yield PlanProblem(
                (*at, "segments", k),
                f"a users KPI can only be segmented by device, not {segment.value}: users are "
                "not additive across UTM combinations (one user can arrive through several)",
            )


def _measure_problems(plan: Plan) -> Iterator[PlanProblem]:
    provided = {event for s in plan.sources.csv_exports for event in s.event_columns}
    for i, measure in enumerate(plan.measures):
        # GA4's events report counts any event name the plan's measures ask for.
        if measure.event not in provided and not plan.sources.feeds_kpis("ga4"):
            yield PlanProblem(
                ("measures", i, "event"),
                f"no source provides event {measure.event!r}: add it to a source's event_columns",
            )


def _traffic_source_problems(plan: Plan) -> Iterator[PlanProblem]:
    declared = {"csv_exports": plan.sources.csv_exports, "ga4": plan.sources.ga4}
    chosen = plan.sources.traffic_source
    if chosen is None and all(declared.values()):
        yield PlanProblem(
            ("sources", "traffic_source"),
            "both csv_exports and ga4 are declared: set traffic_source to the one that feeds "
            "the KPIs, or their sessions would be counted twice",
        )
    elif chosen is not None and not declared[chosen]:
        yield PlanProblem(
            ("sources", "traffic_source"), f"traffic_source is {chosen!r} but no such source"
        )


def format_path(path: Path) -> str:
    """`("objectives", 1, "kpis", 0)` -> `objectives[1].kpis[0]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
