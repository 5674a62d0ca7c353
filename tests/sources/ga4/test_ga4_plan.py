"""The plan's GA4 section: limits the API imposes, and one traffic source for the KPIs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GA4_PLAN

from kpi_pipeline.plan import PlanError, load_plan

ROOT = Path(__file__).resolve().parents[3]


def plan_text(**replace: str) -> str:
    text = GA4_PLAN.format(lookback=3)
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def test_the_example_plan_validates_and_chooses_ga4():
    plan = load_plan(ROOT / "plan_config" / "ga4_example.yaml").plan
    (source,) = plan.sources.ga4
    assert plan.sources.traffic_source == "ga4"
    assert source.key_event_metrics == ["keyEvents:purchase"]
    assert source.lookback_days == 3


def test_both_sources_without_a_choice_would_count_sessions_twice(tmp_path):
    found = problems(tmp_path, plan_text(**{"  traffic_source: ga4\n": ""}))
    assert [path for path, _ in found] == ["sources.traffic_source"]
    assert "counted twice" in found[0][1]


def without_csv(text: str) -> str:
    head, tail = text.split("  csv_exports:\n", 1)
    return head + "measures:" + tail.split("measures:", 1)[1]


def test_the_chosen_source_must_be_declared(tmp_path):
    text = without_csv(plan_text(**{"traffic_source: ga4": "traffic_source: csv_exports"}))
    found = problems(tmp_path, text)
    assert ("sources.traffic_source", "traffic_source is 'csv_exports' but no such source") in found


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("page_size: 2", "page_size: 250001", "sources.ga4[0].page_size"),  # the API's cap
        ('property_id: "123456"', "property_id: properties/123", "sources.ga4[0].property_id"),
        ("lookback_days: 3", "lookback_days: -1", "sources.ga4[0].lookback_days"),
        (
            "page_size: 2",
            "page_size: 2\n      key_events: [a, b, c, d, e, f, g, h, i]",  # > 10 metrics
            "sources.ga4[0].key_events",
        ),
        (
            "page_size: 2",
            "page_size: 2\n      key_events: [purchase, purchase]",
            "sources.ga4[0].key_events",
        ),
        (
            "credentials_env_var: TINY_GA4_CREDENTIALS",
            "credentials_env_var: /home/me/key.json",  # a path, not a variable name
            "sources.ga4[0].credentials_env_var",
        ),
    ],
)
def test_ga4_fields_are_checked(tmp_path, old, new, path):
    assert path in [p for p, _ in problems(tmp_path, plan_text(**{old: new}))]


def test_ga4_counts_any_event_the_measures_name(tmp_path):
    # GA4's events report is filtered to the measures' events: no event_columns needed.
    path = tmp_path / "plan.yaml"
    path.write_text(without_csv(plan_text(**{"  traffic_source: ga4\n": ""})), encoding="utf-8")
    plan = load_plan(path).plan
    assert plan.sources.csv_exports == [] and plan.sources.traffic_source is None
    assert [m.event for m in plan.measures] == ["form_start", "form_submit"]
