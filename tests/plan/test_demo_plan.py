"""The shipped demo plan loads and has the shape the rest of the pipeline relies on."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from kpi_pipeline.plan import KpiKind, LoadedPlan, load_plan, plan_hash
from kpi_pipeline.plan.models import BUILT_IN_MEASURES, Channel

DEMO_PATH = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"
DEMO_TEXT = DEMO_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def demo() -> LoadedPlan:
    return load_plan(DEMO_PATH)


def edit(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"edit must match exactly once, matched {count} times: {old!r}"
    assert old != new
    return text.replace(old, new)


def load_text(tmp_path: Path, text: str) -> LoadedPlan:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text, encoding="utf-8")
    return load_plan(plan_file)


def test_demo_plan_loads(demo: LoadedPlan):
    assert isinstance(demo, LoadedPlan)
    assert demo.path == DEMO_PATH.resolve()
    assert demo.base_dir == DEMO_PATH.resolve().parent
    assert demo.plan.organization == "Northwind Outfitters"
    assert demo.plan.timezone == "America/Toronto"
    assert demo.plan.currency == "CAD"


def test_relative_path_is_resolved(monkeypatch: pytest.MonkeyPatch):
    # Source globs are relative to the plan file, so the loaded path must be absolute.
    monkeypatch.chdir(DEMO_PATH.parent)
    loaded = load_plan(DEMO_PATH.name)
    assert loaded.path.is_absolute()
    assert loaded.path == DEMO_PATH.resolve()
    assert loaded.base_dir == DEMO_PATH.resolve().parent


def test_three_prioritised_objectives_with_deadlines(demo: LoadedPlan):
    objectives = demo.plan.objectives
    assert [o.priority for o in objectives] == [1, 2, 3]
    assert [o.id for o in objectives] == [
        "sell_more_online",
        "engage_visitors",
        "make_quote_requests_easy",
    ]
    assert [o.deadline for o in objectives] == [
        dt.date(2027, 3, 31),
        dt.date(2026, 12, 31),
        dt.date(2026, 12, 31),
    ]
    for objective in objectives:
        assert objective.kpis, f"objective {objective.id} has no KPI"
        assert objective.strategies, f"objective {objective.id} has no strategy"


@pytest.mark.parametrize(
    ("kind", "numerator", "denominator"),
    [
        pytest.param(KpiKind.CONVERSION_RATE, "key_events", "sessions", id="conversion_rate"),
        pytest.param(KpiKind.ENGAGEMENT_RATE, "engaged_sessions", "sessions", id="engagement_rate"),
        pytest.param(
            KpiKind.TASK_COMPLETION_RATE,
            "quote_form_submits",
            "quote_form_starts",
            id="task_completion_rate",
        ),
    ],
)
def test_rate_kpis_resolve_their_measures(
    demo: LoadedPlan, kind: KpiKind, numerator: str, denominator: str
):
    kpis = [kpi for _, kpi in demo.plan.iter_kpis() if kpi.kind is kind]
    assert len(kpis) == 1, f"expected one {kind.value} KPI, found {len(kpis)}"
    [kpi] = kpis
    assert kpi.is_rate
    assert (kpi.resolved_numerator, kpi.resolved_denominator) == (numerator, denominator)
    known = set(BUILT_IN_MEASURES) | {m.id for m in demo.plan.measures}
    assert {kpi.resolved_numerator, kpi.resolved_denominator} <= known
    assert 0 <= kpi.baseline.value <= 1
    assert 0 <= kpi.target.value <= 1
    assert kpi.baseline.as_of < kpi.target.by


def test_bounce_rate_is_the_complement_of_engaged_sessions(demo: LoadedPlan):
    # Bounce = sessions not engaged, per session: the numerator is sessions minus engaged
    # sessions, so the KPI names the subtracted measure and flags it as a complement.
    [kpi] = [kpi for _, kpi in demo.plan.iter_kpis() if kpi.kind is KpiKind.BOUNCE_RATE]
    assert kpi.id == "bounce_rate" and kpi.is_rate and kpi.numerator_is_complement
    assert (kpi.resolved_numerator, kpi.resolved_denominator) == ("engaged_sessions", "sessions")
    # Lower is better: the target sits below the baseline.
    assert kpi.direction.value == "decrease"
    assert kpi.target.value < kpi.baseline.value
    assert [g.value for g in kpi.grains] == ["month", "quarter"]
    # The other rates count their numerator directly.
    others = [k for _, k in demo.plan.iter_kpis() if k.is_rate and k.id != "bounce_rate"]
    assert others and not any(k.numerator_is_complement for k in others)


def test_volume_kpi_resolves_its_measure(demo: LoadedPlan):
    [kpi] = [kpi for _, kpi in demo.plan.iter_kpis() if kpi.kind is KpiKind.VOLUME]
    assert not kpi.is_rate
    assert kpi.resolved_numerator == "quote_form_submits"
    assert kpi.resolved_denominator is None
    assert len(kpi.grains) == 1


def test_tactics_cover_the_main_channels(demo: LoadedPlan):
    channels = {tactic.channel for _, _, tactic in demo.plan.iter_tactics()}
    assert channels >= {
        Channel.EMAIL,
        Channel.PAID_SEARCH,
        Channel.SOCIAL,
        Channel.VIDEO,
        Channel.CONTENT,
    }
    for _, _, tactic in demo.plan.iter_tactics():
        assert tactic.match, f"tactic {tactic.id} has no UTM rule"


def test_plan_hash_is_stable_across_loads(demo: LoadedPlan):
    again = load_plan(DEMO_PATH)
    assert again is not demo
    assert again.plan_hash == demo.plan_hash
    assert plan_hash(again.plan) == demo.plan_hash
    assert re.fullmatch(r"[0-9a-f]{16}", demo.plan_hash)


def test_plan_hash_does_not_depend_on_the_file_location(demo: LoadedPlan, tmp_path: Path):
    assert load_text(tmp_path, DEMO_TEXT).plan_hash == demo.plan_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("target: {value: 0.025", "target: {value: 0.03", id="rate-target"),
        pytest.param("target: {value: 420", "target: {value: 421", id="volume-target"),
        pytest.param("by: 2027-03-31", "by: 2027-03-30", id="target-date"),
    ],
)
def test_plan_hash_changes_with_a_target(demo: LoadedPlan, tmp_path: Path, old: str, new: str):
    changed = load_text(tmp_path, edit(DEMO_TEXT, old, new))
    assert changed.plan_hash != demo.plan_hash


def test_plan_hash_ignores_comments_and_whitespace(demo: LoadedPlan, tmp_path: Path):
    text = DEMO_TEXT
    for old, new in [
        ("# Digital strategic plan", "# A rewritten header comment.\n\n# Digital strategic plan"),
        (
            "fiscal_year_start_month: 4        # fiscal Q1 = April-June",
            "fiscal_year_start_month: 4",
        ),
        ("    priority: 2\n", "    priority: 2     # second\n\n\n"),
        ("{value: 0.018, as_of: 2025-06-01}", "{ value: 0.018 ,   as_of: 2025-06-01 }"),
        (
            "grains: [week, month, quarter]\n        segments: [device]",
            "grains: [ week,month,quarter ]\n        segments: [device]",
        ),
        ("min_denominator: 100\n", "min_denominator: 100   \n"),
    ]:
        text = edit(text, old, new)
    assert text != DEMO_TEXT
    assert load_text(tmp_path, text).plan_hash == demo.plan_hash
