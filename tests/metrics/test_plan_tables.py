"""The plan as small tables: UTM globs as SQL LIKE patterns, KPI/tactic/calendar frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.metrics.plan_tables import (
    PLAN_TABLES,
    UNATTRIBUTED,
    glob_to_like,
    plan_tables,
)
from kpi_pipeline.plan import Plan, load_plan

DEMO_PATH = Path(__file__).parents[2] / "plan_config" / "demo.yaml"
# Earlier than any demo date, so the calendar end comes from the plan's deadlines.
EARLY = dt.date(2025, 1, 1)


@pytest.mark.parametrize(
    ("pattern", "like"),
    [
        # `_` is a LIKE wildcard: a literal underscore must be escaped, `*` becomes `%`.
        pytest.param("cart_*", "cart\\_%", id="underscore-and-star"),
        # A literal `%` would match anything in LIKE: escaped.
        pytest.param("50%off", "50\\%off", id="percent-escaped"),
        # `?` (one character) maps to LIKE's `_`, unescaped, unlike a literal `_`.
        pytest.param("q?_*", "q_\\_%", id="question-mark-vs-literal-underscore"),
        # The escape character itself must be doubled, or it would escape what follows.
        pytest.param("a\\b", "a\\\\b", id="backslash-escaped"),
        # UTM matching is case-insensitive: patterns are lowered (SQL lowers the values).
        pytest.param("Cart_*", "cart\\_%", id="upper-case-lowered"),
        pytest.param("NEWSLETTER", "newsletter", id="plain-upper"),
        # A bare `*` matches every value.
        pytest.param("*", "%", id="star-only"),
        # No constraint on this field: stays None (SQL NULL = "any"), not the string "None".
        pytest.param(None, None, id="none"),
    ],
)
def test_glob_to_like(pattern, like):
    assert glob_to_like(pattern) == like


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(DEMO_PATH).plan


@pytest.fixture(scope="module")
def tables(plan) -> dict[str, pd.DataFrame]:
    return plan_tables(plan, EARLY)


def nulls_to_none(values):
    """pandas 3 stores a missing `str` as NaN (NULL once in SQL): compare it as None."""
    return [None if pd.isna(v) else v for v in values]


def all_tactic_ids(plan: Plan) -> list[str]:
    """Tactic ids walking the plan by hand: objectives -> strategies -> tactics."""
    return [t.id for o in plan.objectives for s in o.strategies for t in s.tactics]


def test_every_table_of_the_specs_is_built_with_its_columns(tables):
    assert set(tables) == {spec.name for spec in PLAN_TABLES}
    for spec in PLAN_TABLES:
        assert list(tables[spec.name].columns) == list(spec.column_names), spec.name
        # Declared keys are unique.
        assert not tables[spec.name].duplicated(list(spec.keys)).any(), spec.name


def test_one_kpi_row_per_plan_kpi_in_order(plan, tables):
    kpi_ids = [k.id for o in plan.objectives for k in o.kpis]
    # The demo has 5 KPIs (3 objectives, the second and the third with 2 each).
    assert len(kpi_ids) == 5
    assert tables["kpis"]["kpi_id"].tolist() == kpi_ids


def test_complement_numerator_is_flagged(tables):
    kpis = tables["kpis"].set_index("kpi_id")
    # bounce_rate counts sessions - engaged_sessions: the measure subtracted is stored as the
    # numerator measure, flagged as a complement; no other demo KPI has one.
    bounce = kpis.loc["bounce_rate"]
    assert (bounce["numerator_measure"], bounce["denominator_measure"]) == (
        "engaged_sessions",
        "sessions",
    )
    assert bool(bounce["is_rate"])
    flagged = kpis.index[kpis["numerator_is_complement"].astype(bool)].tolist()
    assert flagged == ["bounce_rate"]


def test_sources_and_the_kpis_they_feed(tables):
    # The demo has one source, the CSV export ga4_export; it provides sessions, engaged
    # sessions and key events, and the form_start / form_submit event columns behind the
    # quote measures: it feeds every one of the 5 KPIs.
    sources = tables["sources"]
    rows = zip(sources["source_id"], sources["source_kind"], sources["feeds_kpis"], strict=True)
    assert list(rows) == [("ga4_export", "csv_exports", True)]
    kpi_sources = tables["kpi_sources"]
    assert list(zip(kpi_sources["kpi_id"], kpi_sources["source_id"], strict=True)) == [
        (kpi_id, "ga4_export") for kpi_id in tables["kpis"]["kpi_id"]
    ]


def test_every_kpi_has_an_all_segment(plan, tables):
    segments = tables["kpi_segments"]
    for objective in plan.objectives:
        for kpi in objective.kpis:
            got = segments.loc[segments["kpi_id"] == kpi.id, "segment_type"].tolist()
            # 'all' (the whole) first, then the declared breakdowns; `quote_requests` has
            # none declared and must still get its 'all' row.
            assert got == ["all", *(s.value for s in kpi.segments)], kpi.id


def test_unrestricted_kpis_list_every_tactic_and_unattributed(plan, tables):
    expected = [*all_tactic_ids(plan), UNATTRIBUTED]
    # Demo: 8 tactics (2 email, 2 paid search, 2 social/video, 1 content, 1 quote) + 1.
    assert len(expected) == 9
    kpi_tactics = tables["kpi_tactics"]
    unrestricted = [k.id for o in plan.objectives for k in o.kpis if k.tactics is None]
    assert unrestricted, "the demo should have unrestricted KPIs, or this test proves nothing"
    for kpi_id in unrestricted:
        got = kpi_tactics.loc[kpi_tactics["kpi_id"] == kpi_id, "tactic_id"].tolist()
        assert got == expected, kpi_id


def test_restricted_kpi_lists_only_its_tactics(plan):
    # A KPI restricted to one tactic gets that tactic only: no 'unattributed' traffic.
    data = plan.model_dump()
    data["objectives"][0]["kpis"][0]["tactics"] = ["email_newsletter"]
    restricted = Plan.model_validate(data)
    kpi_tactics = plan_tables(restricted, EARLY)["kpi_tactics"]
    first = kpi_tactics.loc[kpi_tactics["kpi_id"] == "online_conversion_rate", "tactic_id"]
    assert first.tolist() == ["email_newsletter"]
    # The other KPIs are untouched (8 tactics + unattributed).
    other = kpi_tactics.loc[kpi_tactics["kpi_id"] == "engagement_rate", "tactic_id"]
    assert len(other) == 9


def test_rule_order_follows_plan_order(plan, tables):
    rules = tables["tactic_rules"]
    expected = [
        (t.id, s.id, o.id, m.source, m.medium, m.campaign)
        for o in plan.objectives
        for s in o.strategies
        for t in s.tactics
        for m in t.match
    ]
    # Demo: 9 rules (paid_generic_keywords has 2), so rule_order is 0..8.
    assert len(expected) == 9
    assert rules["rule_order"].tolist() == list(range(9))
    got = list(
        zip(
            rules["tactic_id"],
            rules["strategy_id"],
            rules["objective_id"],
            nulls_to_none(rules["source_pattern"]),
            nulls_to_none(rules["medium_pattern"]),
            nulls_to_none(rules["campaign_pattern"]),
            strict=True,
        )
    )
    assert got == [
        (t, s, o, glob_to_like(src), glob_to_like(med), glob_to_like(cmp))
        for t, s, o, src, med, cmp in expected
    ]


def test_rule_rows_by_hand(tables):
    rules = tables["tactic_rules"].set_index("rule_order")
    # Rule 1 (second in the YAML): email_cart_reminders {medium: email, campaign: "cart_*"};
    # no source given -> NULL, and the glob is already a LIKE pattern.
    cart = rules.loc[1]
    assert cart["tactic_id"] == "email_cart_reminders"
    assert cart["channel"] == "email"
    assert pd.isna(cart["source_pattern"])
    assert (cart["medium_pattern"], cart["campaign_pattern"]) == ("email", "cart\\_%")
    # Rules 3 and 4 are the two rules of paid_generic_keywords, in YAML order.
    assert rules.loc[3, "campaign_pattern"] == "generic\\_%"
    assert rules.loc[4, "source_pattern"] == "bing"
    assert pd.isna(rules.loc[4, "campaign_pattern"])
    assert rules.loc[4, "tactic_id"] == "paid_generic_keywords"


def last_deadline(plan: Plan) -> dt.date:
    return max(
        [o.deadline for o in plan.objectives]
        + [k.target.by for o in plan.objectives for k in o.kpis]
    )


def test_calendar_covers_history_through_a_year_after_last_deadline(plan, tables):
    calendar = tables["calendar"]
    dates = calendar["date"].dt.date
    # Demo: history_start 2025-06-01, last deadline 2027-03-31 -> at least 2028-03-31.
    assert last_deadline(plan) == dt.date(2027, 3, 31)
    assert dates.min() == plan.history_start == dt.date(2025, 6, 1)
    assert dates.max() >= dt.date(2028, 3, 31)
    # Contiguous, 4 grains per date: no day missing in between.
    days = (dates.max() - dates.min()).days + 1
    assert len(calendar) == 4 * days
    assert dates.nunique() == days


def test_calendar_uses_plan_fiscal_year(tables):
    # Demo fiscal year starts in April: 2026-08-10 is in FY2026-27 Q2 (Jul 1 .. Sep 30).
    calendar = tables["calendar"]
    row = calendar[
        (calendar["date"] == pd.Timestamp("2026-08-10")) & (calendar["grain"] == "quarter")
    ]
    assert row["period_label"].tolist() == ["FY2026-27 Q2"]


def test_calendar_covers_a_kpi_target_later_than_every_deadline(plan):
    # A KPI may aim past its objective's deadline (the plan checks allow it): its target date
    # counts as a deadline too. 2029-06-30 + 1 year = 2030-06-30.
    data = plan.model_dump()
    data["objectives"][1]["kpis"][0]["target"]["by"] = dt.date(2029, 6, 30)
    calendar = plan_tables(Plan.model_validate(data), EARLY)["calendar"]
    assert calendar["date"].max() >= pd.Timestamp("2030-06-30")


def test_calendar_extends_to_a_later_calendar_through(plan):
    # A run date past deadline + 1 year must still have calendar rows for its days.
    later = dt.date(2030, 6, 30)
    calendar = plan_tables(plan, later)["calendar"]
    assert calendar["date"].max() == pd.Timestamp(later)
