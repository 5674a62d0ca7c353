"""Users KPIs: GA4 counts users once per period (users are not additive across days).

The plan checks refuse what a user count cannot be; the real job asks the fake for each
period of the KPI's grain and `marts.kpi_values` holds exactly the fake's numbers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import GA4_PLAN, MON, fill_tiny_week
from fake_ga4 import range_of, report_of

from kpi_pipeline.plan import PlanError, load_plan

WEEKLY_USERS = """\
      - id: wk_users
        label: Weekly users
        kind: users
        users_metric: totalUsers
        baseline: {value: 900, as_of: 2026-01-01}
        target: {value: 1500, by: 2026-12-31}
        grains: [week]
        segments: [device]
"""
MONTHLY_USERS = """\
      - id: mo_users
        label: Monthly active users
        kind: users
        users_metric: activeUsers
        baseline: {value: 3000, as_of: 2026-01-01}
        target: {value: 5000, by: 2026-12-31}
        grains: [month]
"""
D = dt.date


def users_plan(*kpis: str, **replace: str) -> str:
    text = GA4_PLAN.format(lookback=3) + "".join(kpis)
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


# -- plan validation --------------------------------------------------------------------

AT = "objectives[0].kpis[3]"


def test_a_users_kpi_with_device_segment_validates(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(users_plan(WEEKLY_USERS), encoding="utf-8")
    kpi = load_plan(path).plan.objectives[0].kpis[3]
    assert (kpi.kind.value, kpi.users_metric, kpi.resolved_denominator) == (
        "users",
        "totalUsers",
        None,
    )


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("        users_metric: totalUsers\n", "", f"{AT}.users_metric", "needs `users_metric`"),
        ("users_metric: totalUsers", "users_metric: sessions", f"{AT}.users_metric", ""),
        ("segments: [device]", "segments: [tactic]", f"{AT}.segments[0]", "not additive"),
        ("segments: [device]", "segments: [device, channel]", f"{AT}.segments[1]", "channel"),
        ("grains: [week]\n        segments", "grains: [week, month]\n        segments",
         f"{AT}.grains", "one grain"),
        ("segments: [device]", "tactics: [email_news]", f"{AT}.tactics", "not additive"),
        ("segments: [device]", "measure: starts", f"{AT}.measure", "is not used"),
    ],
)  # fmt: skip
def test_what_a_users_kpi_cannot_be_is_refused_at_its_field(tmp_path, old, new, path, words):
    found = problems(tmp_path, users_plan(WEEKLY_USERS.replace(old, new)))
    assert path in [p for p, _ in found], found
    assert any(words in message for p, message in found if p == path)


def test_a_users_kpi_needs_ga4_to_feed_the_kpis(tmp_path):
    text = users_plan(WEEKLY_USERS, **{"traffic_source: ga4": "traffic_source: csv_exports"})
    found = problems(tmp_path, text)
    assert [p for p, _ in found] == [f"{AT}.kind"]
    assert "requested from GA4" in found[0][1]


def test_users_metric_belongs_to_users_kpis_only(tmp_path):
    text = users_plan(
        **{"kind: engagement_rate\n": "kind: engagement_rate\n        users_metric: newUsers\n"}
    )
    found = problems(tmp_path, text)
    assert found == [
        (
            "objectives[0].kpis[1].users_metric",
            "`users_metric` is not used for a engagement_rate KPI",
        )
    ]


# -- the real job against the fake --------------------------------------------------------


def script_users(fake, **numbers: dict[str, str]) -> None:
    """`wk_0105_0111={...}` -> users of totalUsers/activeUsers over that range."""
    for name, values in numbers.items():
        kind, start, end = name.split("_")
        metric = {"wk": "totalUsers", "mo": "activeUsers"}[kind]
        first, last = (D(2026, int(mmdd[:2]), int(mmdd[2:])) for mmdd in (start, end))
        fake.users[(metric, first, last)] = values


def users_ranges(fake, since: int = 0) -> list[tuple[str, list[str], dt.date, dt.date]]:
    return sorted(
        (r.metrics[0].name, [d.name for d in r.dimensions], *range_of(r))
        for r in fake.requests[since:]
        if report_of(r) == "users"
    )


def users_values(project):
    frame = project.read(
        "select kpi_id, grain, period_label, segment, numerator, denominator, value, "
        "is_partial, covered_from, covered_to, days_covered from marts.kpi_values "
        "where kpi_id like '%users' order by kpi_id, period_start, segment"
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def users_days_with_data(project):
    frame = project.read(
        "select kpi_id, period_label, segment, days_with_data from marts.kpi_values "
        "where kpi_id like '%users' order by kpi_id, period_start, segment"
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def test_users_are_requested_per_period_and_never_summed_from_days(ga4_project):
    fake = ga4_project.fake
    ga4_project.plan_path.write_text(users_plan(WEEKLY_USERS, MONTHLY_USERS), encoding="utf-8")
    fill_tiny_week(fake)  # Monday 5 to Wednesday 7 January
    fake.traffic(D(2026, 1, 14), "google", "organic", "(not set)", "50", "20", "1")
    # GA4's own counts: devices add up to more than the whole (one user, two devices).
    script_users(
        fake,
        wk_0105_0111={"all": "1000", "desktop": "700", "mobile": "400.0", "tablet": "50"},
        wk_0112_0114={"all": "300", "desktop": "200", "mobile": "150"},
        mo_0101_0114={"all": "1234"},
    )
    assert ga4_project.run(MON, D(2026, 1, 14)).success
    # One request per period (one more by device), from the period's start to its end or
    # the run's last day; no `date` dimension.
    assert users_ranges(fake) == [
        ("activeUsers", [], D(2026, 1, 1), D(2026, 1, 14)),
        ("totalUsers", [], D(2026, 1, 5), D(2026, 1, 11)),
        ("totalUsers", [], D(2026, 1, 12), D(2026, 1, 14)),
        # Three devices: two pages (page_size 2), the same paging path as the daily reports.
        ("totalUsers", ["deviceCategory"], D(2026, 1, 5), D(2026, 1, 11)),
        ("totalUsers", ["deviceCategory"], D(2026, 1, 5), D(2026, 1, 11)),
        ("totalUsers", ["deviceCategory"], D(2026, 1, 12), D(2026, 1, 14)),
    ]
    # GA4 covered every day it was pulled, 5 to 14 January (rows or not): the month is judged
    # on the 5th..14th (10 of 31 days), W02 on all its 7 days, W03 on the 12th..14th (3 of 7).
    jan5, jan11, jan12, jan14 = D(2026, 1, 5), D(2026, 1, 11), D(2026, 1, 12), D(2026, 1, 14)
    assert users_values(ga4_project) == [
        ("mo_users", "month", "2026-01", "all", 1234.0, None, 1234.0, True, jan5, jan14, 10),
        ("wk_users", "week", "2026-W02", "all", 1000.0, None, 1000.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "desktop", 700.0, None, 700.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "mobile", 400.0, None, 400.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "tablet", 50.0, None, 50.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W03", "all", 300.0, None, 300.0, True, jan12, jan14, 3),
        ("wk_users", "week", "2026-W03", "desktop", 200.0, None, 200.0, True, jan12, jan14, 3),
        ("wk_users", "week", "2026-W03", "mobile", 150.0, None, 150.0, True, jan12, jan14, 3),
    ]
    # Loaded days with data (GA4 rows): 5, 6, 7 and 14 January. Checked at the end, once the
    # later run's figures are checked too.
    first_days_with_data = users_days_with_data(ga4_project)
    scores = ga4_project.read(
        "select kpi_id, period_label, segment, expected from marts.kpi_scores "
        "where kind = 'users' and segment = 'all' order by kpi_id, period_label"
    )
    assert set(scores["kpi_id"]) == {"wk_users", "mo_users"}
    # Expected = the path's average over the covered days (offsets from 2026-01-01, 364 days):
    # month 5th..14th, offsets 4..13, midpoint 8.5: 3000 + 2000 x 8.5/364 = 3046.70;
    # W02 offsets 4..10, midpoint 7: 900 + 600 x 7/364 = 911.54;
    # W03 so far 12th..14th, offsets 11..13, midpoint 12: 900 + 600 x 12/364 = 919.78.
    assert scores["expected"].tolist() == pytest.approx(
        [3000 + 2000 * 8.5 / 364, 900 + 600 * 7 / 364, 900 + 600 * 12 / 364], rel=1e-12
    )

    # A later run (15 to 20 January, re-pulling from the 12th) re-requests the cut week and
    # month through its own last day and replaces their figures.
    fake.traffic(D(2026, 1, 20), "google", "organic", "(not set)", "40", "20", "1")
    script_users(
        fake,
        wk_0112_0118={"all": "520", "desktop": "330", "mobile": "260"},
        wk_0119_0120={"all": "90", "desktop": "90"},
        mo_0101_0120={"all": "1800"},
    )
    since = len(fake.requests)
    assert ga4_project.run(D(2026, 1, 15), D(2026, 1, 20)).success
    assert users_ranges(fake, since) == [
        ("activeUsers", [], D(2026, 1, 1), D(2026, 1, 20)),
        ("totalUsers", [], D(2026, 1, 12), D(2026, 1, 18)),
        ("totalUsers", [], D(2026, 1, 19), D(2026, 1, 20)),
        ("totalUsers", ["deviceCategory"], D(2026, 1, 12), D(2026, 1, 18)),
        ("totalUsers", ["deviceCategory"], D(2026, 1, 19), D(2026, 1, 20)),
    ]
    # Covered now 5 to 20 January: the month 16 of 31 days, W03 whole (12th..18th), W04 the
    # 19th..20th (2 of 7).
    jan18, jan19, jan20 = D(2026, 1, 18), D(2026, 1, 19), D(2026, 1, 20)
    assert users_values(ga4_project) == [
        ("mo_users", "month", "2026-01", "all", 1800.0, None, 1800.0, True, jan5, jan20, 16),
        ("wk_users", "week", "2026-W02", "all", 1000.0, None, 1000.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "desktop", 700.0, None, 700.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "mobile", 400.0, None, 400.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W02", "tablet", 50.0, None, 50.0, False, jan5, jan11, 7),
        ("wk_users", "week", "2026-W03", "all", 520.0, None, 520.0, False, jan12, jan18, 7),
        ("wk_users", "week", "2026-W03", "desktop", 330.0, None, 330.0, False, jan12, jan18, 7),
        ("wk_users", "week", "2026-W03", "mobile", 260.0, None, 260.0, False, jan12, jan18, 7),
        ("wk_users", "week", "2026-W04", "all", 90.0, None, 90.0, True, jan19, jan20, 2),
        ("wk_users", "week", "2026-W04", "desktop", 90.0, None, 90.0, True, jan19, jan20, 2),
    ]
    raw = ga4_project.read(
        "select period_start, through_day, count(*) as n from raw.ga4_period_users "
        "where kpi_id = 'wk_users' group by 1, 2 order by 1"
    )
    assert [tuple(row) for row in raw.itertuples(index=False)] == [
        (D(2026, 1, 5), D(2026, 1, 11), 4),
        (D(2026, 1, 12), D(2026, 1, 18), 3),  # the cut figure (through the 14th) is gone
        (D(2026, 1, 19), D(2026, 1, 20), 2),
    ]
    # Days with data stay the days GA4 had rows (5, 6, 7 and 14 January, then the 20th too),
    # as for every other KPI, not the days covered.
    assert first_days_with_data == [
        ("mo_users", "2026-01", "all", 4),
        ("wk_users", "2026-W02", "all", 3),
        ("wk_users", "2026-W02", "desktop", 3),
        ("wk_users", "2026-W02", "mobile", 3),
        ("wk_users", "2026-W02", "tablet", 3),
        ("wk_users", "2026-W03", "all", 1),
        ("wk_users", "2026-W03", "desktop", 1),
        ("wk_users", "2026-W03", "mobile", 1),
    ]
    assert users_days_with_data(ga4_project) == [
        ("mo_users", "2026-01", "all", 5),
        ("wk_users", "2026-W02", "all", 3),
        ("wk_users", "2026-W02", "desktop", 3),
        ("wk_users", "2026-W02", "mobile", 3),
        ("wk_users", "2026-W02", "tablet", 3),
        ("wk_users", "2026-W03", "all", 1),
        ("wk_users", "2026-W03", "desktop", 1),
        ("wk_users", "2026-W03", "mobile", 1),
        ("wk_users", "2026-W04", "all", 1),
        ("wk_users", "2026-W04", "desktop", 1),
    ]
