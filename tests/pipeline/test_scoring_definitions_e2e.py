"""The new scoring definitions (issue 10) end to end: the real daily job (`run_days`) on tiny
plans and CSV exports written here, every expectation computed by hand.

CSV coverage: file sources do not write `raw.source_days` yet, so a CSV day is covered
only when it has rows; soon it will be "covered when a file read for the run spans the
day". Every file below has rows on each day from its first to its last, so both rules give
the same answers: no assertion here depends on which one is in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.warehouse.engine import read_frame_once

D = dt.date.fromisoformat
HEADER = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"


@dataclass
class Project:
    plan_path: Path
    plan_id: str
    warehouse_url: str

    def run(self, first: str, last: str):
        result = run_days(self.plan_path, D(first), D(last), warehouse_url=self.warehouse_url)
        assert result.success, step_failures(result)
        return result

    def read(self, sql: str) -> pd.DataFrame:
        return read_frame_once(self.warehouse_url, sql, plan_id=self.plan_id)


def make_project(root: Path, plan: str, files: dict[str, str], warehouse_url: str) -> Project:
    plan_path = root / "plan.yaml"
    plan_path.write_text(plan, encoding="utf-8")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    plan_id = load_plan(plan_path).plan_id
    return Project(plan_path, plan_id, warehouse_url)


def one(frame: pd.DataFrame, **where) -> pd.Series:
    rows = frame
    for column, wanted in where.items():
        rows = rows[rows[column] == wanted]
    assert len(rows) == 1, f"expected one row for {where}, found {len(rows)}"
    return rows.iloc[0]


def day(value) -> dt.date:
    return pd.Timestamp(value).date()


def covered(row: pd.Series) -> tuple:
    """(covered_from, covered_to, days_covered, is_partial, as_of_date) of a row."""
    return (
        day(row.covered_from),
        day(row.covered_to),
        int(row.days_covered),
        bool(row.is_partial),
        day(row.as_of_date),
    )


# -- 4. a bounce rate and a form abandonment rate (complement numerators) ------------------

BOUNCE_PLAN = """\
id: bounce
organization: Tiny Shop
mission: Keep visitors.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
      event_columns: {form_start: form_start, form_submit: form_submit}
measures:
  - {id: starts, event: form_start}
  - {id: submits, event: form_submit}
objectives:
  - id: keep
    title: Keep visitors
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: bounce
        label: Bounce rate
        kind: bounce_rate
        direction: decrease
        baseline: {value: 0.6, as_of: 2026-01-01}
        target: {value: 0.236, by: 2026-12-31}
        grains: [week, month, quarter]
        segments: [device]
        tolerance: 0.02
        min_denominator: 500
      - id: abandon
        label: Form abandonment
        kind: task_completion_rate
        numerator: {complement_of: submits}
        denominator: starts
        direction: decrease
        baseline: {value: 0.5, as_of: 2026-01-01}
        target: {value: 0.136, by: 2026-12-31}
        grains: [week]
        tolerance: 0.1
        min_denominator: 10
"""
# Two full ISO weeks: W02 = Mon 5 .. Sun 11 January, W03 = Mon 12 .. Sun 18. Every day has
# rows. Columns after `device`: sessions, engaged, key events, form_start, form_submit.
BOUNCE_CSV = "\n".join(
    [
        f"{HEADER},form_start,form_submit",
        "2026-01-05,google,organic,(none),/,desktop,60,30,1,4,2",
        "2026-01-05,google,organic,(none),/,mobile,40,10,0,0,0",
        "2026-01-06,google,organic,(none),/,mobile,100,40,1,4,2",
        "2026-01-07,google,organic,(none),/,mobile,100,40,1,4,4",
        "2026-01-08,google,organic,(none),/,mobile,100,40,1,4,2",
        "2026-01-09,google,organic,(none),/,mobile,100,40,1,4,2",
        "2026-01-10,google,organic,(none),/,mobile,100,40,1,0,0",
        "2026-01-11,google,organic,(none),/,mobile,100,40,1,0,0",
        "2026-01-12,google,organic,(none),/,mobile,100,50,1,6,6",
        "2026-01-13,google,organic,(none),/,mobile,100,50,1,4,3",
        *(f"2026-01-{d},google,organic,(none),/,mobile,100,50,1,0,0" for d in range(14, 19)),
    ]
)


def test_bounce_rate_and_form_abandonment_end_to_end(tmp_path: Path, warehouse_url: str):
    project = make_project(
        tmp_path, BOUNCE_PLAN, {"exports/2026-01.csv": BOUNCE_CSV + "\n"}, warehouse_url
    )
    project.run("2026-01-05", "2026-01-18")
    scores = project.read("select * from marts.kpi_scores")
    scores["start"] = scores["period_start"].map(day)
    bounce = scores[scores.kpi_id == "bounce"]

    # Bounce numerator = sessions - engaged sessions, per period.
    # W02: sessions 60 + 40 + 6 x 100 = 700; engaged 30 + 10 + 6 x 40 = 280 -> 420 / 700 = 0.6.
    w02 = one(bounce, grain="week", start=D("2026-01-05"), segment="all")
    assert (w02.numerator, w02.denominator) == (420.0, 700.0)
    assert w02.value == pytest.approx(0.6, rel=1e-12)
    assert covered(w02) == (D("2026-01-05"), D("2026-01-11"), 7, False, D("2026-01-11"))
    # Path 0.6 on Jan 1 -> 0.236 on Dec 31: -0.001 a day. W02 = offsets 4..10, midpoint 7:
    # expected 0.593, band 2 % of it = 0.01186. 0.6 is 0.007 worse (within the band); the
    # Wilson interval [0.563258, 0.635651] is wider but the point is behind: at_risk.
    assert w02.expected == pytest.approx(0.593, rel=1e-12)
    assert w02.tolerance_band == pytest.approx(0.01186, rel=1e-9)
    assert (w02.ci_low, w02.ci_high) == pytest.approx((0.563258, 0.635651), abs=2e-6)
    assert w02.status == "at_risk"
    # By device in W02: desktop 60 - 30 = 30 over 60 (under min_denominator 500);
    # mobile (40 - 10) + 6 x (100 - 40) = 390 over 640.
    desktop = one(bounce, grain="week", start=D("2026-01-05"), segment="desktop")
    assert (desktop.numerator, desktop.denominator, desktop.value) == (30.0, 60.0, 0.5)
    assert desktop.status == "insufficient_data"
    mobile = one(bounce, grain="week", start=D("2026-01-05"), segment="mobile")
    assert (mobile.numerator, mobile.denominator) == (390.0, 640.0)
    assert mobile.value == pytest.approx(390 / 640, rel=1e-12)
    # W03: 7 x (100 - 50) = 350 over 700 = 0.5; offsets 11..17, midpoint 14: expected
    # 0.586; 0.5 is better than the path, and the interval's high end 0.536939 is far above
    # the 0.236 target: on_track.
    w03 = one(bounce, grain="week", start=D("2026-01-12"), segment="all")
    assert (w03.numerator, w03.denominator, w03.value) == (350.0, 700.0, 0.5)
    assert w03.expected == pytest.approx(0.586, rel=1e-12)
    assert w03.status == "on_track"
    # January and Q1 are cut by the start of history (Jan 5) and by the last loaded day
    # (Jan 18): judged on Jan 5..18 (14 days), offsets 4..17, midpoint 10.5 -> 0.5895
    # (the whole of Q1, offsets 0..89, would give 0.5555; the path on Jan 18 0.583).
    # 420 + 350 = 770 over 1400 = 0.55: better than 0.5895 -> on_track.
    for grain, days_in_period in (("month", 31), ("quarter", 90)):
        period = one(bounce, grain=grain, start=D("2026-01-01"), segment="all")
        assert (period.numerator, period.denominator, period.value) == (770.0, 1400.0, 0.55)
        assert covered(period) == (D("2026-01-05"), D("2026-01-18"), 14, True, D("2026-01-18"))
        assert days_in_period > 14
        assert period.expected == pytest.approx(0.5895, rel=1e-12), grain
        assert period.status == "on_track"

    # Form abandonment = starts - submits, per day: W02 starts 4+4+4+4+4 = 20, submits
    # 2+2+4+2+2 = 12 -> 8 / 20 = 0.4 (Jan 10 and 11 have traffic but no form events).
    abandon = scores[(scores.kpi_id == "abandon") & (scores.segment == "all")]
    a02 = one(abandon, start=D("2026-01-05"))
    assert (a02.numerator, a02.denominator, a02.value) == (8.0, 20.0, 0.4)
    # Path 0.5 -> 0.136 (-0.001 a day): W02 expected 0.493; 0.4 is better: on_track.
    assert a02.expected == pytest.approx(0.493, rel=1e-12)
    assert a02.status == "on_track"
    # W03: (6 - 6) + (4 - 3) = 1 over 6 + 4 = 10: 0.1, better than the 0.136 target, but the
    # Wilson interval of 1/10 is [0.017876, 0.404150]: its high end is above the target, so
    # not achieved; better than the path (0.486): on_track.
    a03 = one(abandon, start=D("2026-01-12"))
    assert (a03.numerator, a03.denominator, a03.value) == (1.0, 10.0, 0.1)
    assert a03.expected == pytest.approx(0.486, rel=1e-12)
    assert (a03.ci_low, a03.ci_high) == pytest.approx((0.017876, 0.404150), abs=2e-6)
    assert a03.status == "on_track"

    # The snapshot of the run carries the same covered days.
    snapshot = project.read(
        "select covered_from, covered_to, days_covered from marts.kpi_snapshots "
        "where kpi_id = 'bounce' and grain = 'quarter' and segment_type = 'all'"
    )
    assert [(day(f), day(t), int(n)) for f, t, n in snapshot.itertuples(index=False)] == [
        (D("2026-01-05"), D("2026-01-18"), 14)
    ]

    kpis = project.read("select kpi_id, numerator_is_complement from plan.kpis order by kpi_id")
    assert [(k, bool(c)) for k, c in kpis.itertuples(index=False)] == [
        ("abandon", True),
        ("bounce", True),
    ]


# Five more weeks later, a file for Mon 2 .. Sun 8 February (W06), every day with rows:
# 100 sessions, 60 engaged -> 40 bounces a day. Nothing from Jan 19 to Feb 1.
FEBRUARY_CSV = "\n".join(
    [
        f"{HEADER},form_start,form_submit",
        *(f"2026-02-0{d},google,organic,(none),/,mobile,100,60,1,0,0" for d in range(2, 9)),
    ]
)


def test_a_period_is_judged_on_its_own_covered_days_not_the_last_loaded_day(tmp_path: Path):
    project = make_project(
        tmp_path,
        BOUNCE_PLAN,
        {"exports/2026-01.csv": BOUNCE_CSV + "\n", "exports/2026-02.csv": FEBRUARY_CSV + "\n"},
        f"duckdb:///{tmp_path / 'kpi.duckdb'}",
    )
    project.run("2026-01-05", "2026-02-08")
    scores = project.read(
        "select * from marts.kpi_scores where kpi_id = 'bounce' and segment_type = 'all'"
    )
    scores["start"] = scores["period_start"].map(day)
    # January: history cut at the 5th, data to the 18th; the warehouse's last loaded day is
    # Feb 8, but January is judged on Jan 5..18 as before: expected 0.5895 (on Feb 8, offset
    # 38, the path is 0.562), as_of_date Jan 18.
    january = one(scores, grain="month", start=D("2026-01-01"))
    assert covered(january) == (D("2026-01-05"), D("2026-01-18"), 14, True, D("2026-01-18"))
    assert january.expected == pytest.approx(0.5895, rel=1e-12)
    # February: Feb 2..8 (7 of 28 days), offsets 32..38, midpoint 35 -> 0.565; 7 x 40 = 280
    # bounces over 700 sessions = 0.4.
    february = one(scores, grain="month", start=D("2026-02-01"))
    assert covered(february) == (D("2026-02-02"), D("2026-02-08"), 7, True, D("2026-02-08"))
    assert (february.numerator, february.denominator, february.value) == (280.0, 700.0, 0.4)
    assert february.expected == pytest.approx(0.565, rel=1e-12)
    assert february.status == "on_track"
    # Q1 so far: covered Jan 5..18 and Feb 2..8 = 21 days; 770 + 280 = 1050 over 2100.
    q1 = one(scores, grain="quarter", start=D("2026-01-01"))
    assert covered(q1) == (D("2026-01-05"), D("2026-02-08"), 21, True, D("2026-02-08"))
    assert (q1.numerator, q1.denominator, q1.value) == (1050.0, 2100.0, 0.5)
    # Weeks W04 and W05 (Jan 19 .. Feb 1) were never covered: no rows at all.
    weeks = sorted(scores[scores.grain == "week"].start)
    assert weeks == [D("2026-01-05"), D("2026-01-12"), D("2026-02-02")]


def test_a_day_with_more_submits_than_starts_does_not_break_scoring(tmp_path: Path):
    # A form started late on Monday and submitted after midnight: Tuesday has 1 start and 3
    # submits. Per day, the abandonment complement is 1 - 3 = -2 over 1 start; over the
    # week it is (4 - 2) + (1 - 3) = 0 over 5 starts = 0. One odd day must not stop the
    # whole plan from being scored.
    csv = "\n".join(
        [
            f"{HEADER},form_start,form_submit",
            "2026-01-05,google,organic,(none),/,desktop,100,50,1,4,2",
            "2026-01-06,google,organic,(none),/,desktop,100,50,1,1,3",
            *(
                f"2026-01-{d:02d},google,organic,(none),/,desktop,100,50,1,0,0"
                for d in range(7, 12)
            ),
        ]
    )
    plan = BOUNCE_PLAN.replace(
        "        grains: [week]\n        tolerance: 0.1",
        "        grains: [day, week]\n        tolerance: 0.1",
    )
    assert plan != BOUNCE_PLAN
    project = make_project(
        tmp_path, plan, {"exports/2026-01.csv": csv + "\n"}, f"duckdb:///{tmp_path / 'kpi.duckdb'}"
    )
    project.run("2026-01-05", "2026-01-11")  # asserts the run succeeded
    week = project.read(
        "select numerator, denominator, value from marts.kpi_scores "
        "where kpi_id = 'abandon' and grain = 'week' and segment_type = 'all'"
    )
    assert [tuple(r) for r in week.itertuples(index=False)] == [(0.0, 5.0, 0.0)]


# -- 5. a source gap: only the KPIs the late source feeds are partial ----------------------

GAP_PLAN = """\
id: gap
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: site_a
      path: a/*.csv
      event_columns: {form_start: form_start}
    - id: site_b
      path: b/*.csv
      event_columns: {quote_request: quote_request}
measures:
  - {id: starts, event: form_start}
  - {id: quotes, event: quote_request}
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    kpis:
      - id: starts_vol
        label: Form starts
        kind: volume
        measure: starts
        baseline: {value: 10, as_of: 2026-01-01}
        target: {value: 374, by: 2026-12-31}
        grains: [week]
      - id: quotes_vol
        label: Quote requests
        kind: volume
        measure: quotes
        baseline: {value: 10, as_of: 2026-01-01}
        target: {value: 374, by: 2026-12-31}
        grains: [week]
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.01, as_of: 2026-01-01}
        target: {value: 0.03, by: 2026-12-31}
        grains: [day, week]
"""
# Site A: every day Jan 5..18, 100 sessions, 2 key events, 3 form starts.
SITE_A = "\n".join(
    [
        f"{HEADER},form_start",
        *(f"2026-01-{d:02d},google,organic,(none),/,desktop,100,50,2,3" for d in range(5, 19)),
    ]
)
# Site B starts later: every day Jan 7..18, 10 sessions, 1 key event; one quote request a
# day in W02 (Jan 7..11), none in W03 (traffic rows only, so no event rows at all).
SITE_B = "\n".join(
    [
        f"{HEADER},quote_request",
        *(f"2026-01-{d:02d},bing,cpc,brand,/,desktop,10,5,1,1" for d in range(7, 12)),
        *(f"2026-01-{d:02d},bing,cpc,brand,/,desktop,10,5,1,0" for d in range(12, 19)),
    ]
)


@pytest.fixture
def gap_project(tmp_path: Path) -> Project:
    project = make_project(
        tmp_path,
        GAP_PLAN,
        {"a/2026-01.csv": SITE_A + "\n", "b/2026-01.csv": SITE_B + "\n"},
        f"duckdb:///{tmp_path / 'kpi.duckdb'}",
    )
    project.run("2026-01-05", "2026-01-18")
    return project


def test_which_sources_feed_which_kpi(gap_project: Project):
    plan = load_plan(gap_project.plan_path).plan
    sources = {kpi.id: plan.kpi_sources(kpi) for _, kpi in plan.iter_kpis()}
    assert sources == {
        "starts_vol": ["site_a"],
        "quotes_vol": ["site_b"],
        "conv": ["site_a", "site_b"],
    }
    table = gap_project.read("select kpi_id, source_id from plan.kpi_sources")
    assert sorted(table.itertuples(index=False, name=None)) == [
        ("conv", "site_a"),
        ("conv", "site_b"),
        ("quotes_vol", "site_b"),
        ("starts_vol", "site_a"),
    ]


def test_a_late_source_leaves_only_its_own_kpis_partial(gap_project: Project):
    values = gap_project.read("select * from marts.kpi_values where segment_type = 'all'")
    values["start"] = values["period_start"].map(day)
    w02 = values[(values.grain == "week") & (values.start == D("2026-01-05"))]
    w03 = values[(values.grain == "week") & (values.start == D("2026-01-12"))]

    # Fed by site A alone: W02 complete (Jan 5..11), 7 x 3 = 21 form starts.
    starts = one(w02, kpi_id="starts_vol")
    assert covered(starts) == (D("2026-01-05"), D("2026-01-11"), 7, False, D("2026-01-11"))
    assert starts.value == 21.0
    # Fed by site B alone: W02 covered Jan 7..11 only (5 of 7 days): partial, 5 quotes.
    quotes = one(w02, kpi_id="quotes_vol")
    assert covered(quotes) == (D("2026-01-07"), D("2026-01-11"), 5, True, D("2026-01-11"))
    assert quotes.value == 5.0
    # Fed by both: a day counts when BOTH covered it, so W02 is Jan 7..11 (partial) and
    # sums only those days: key events A 5 x 2 + B 5 x 1 = 15 over sessions A 5 x 100 + B
    # 5 x 10 = 550 (A's Jan 5 and 6, 4 key events in 200 sessions, are not judged).
    conv = one(w02, kpi_id="conv")
    assert covered(conv) == (D("2026-01-07"), D("2026-01-11"), 5, True, D("2026-01-11"))
    assert (conv.numerator, conv.denominator) == (15.0, 550.0)

    # W03 both sources cover every day: nothing partial. Site B had traffic but no quote
    # request all week (no event rows at all): a real 0, not a missing row.
    for kpi_id in ("starts_vol", "quotes_vol", "conv"):
        row = one(w03, kpi_id=kpi_id)
        assert covered(row) == (D("2026-01-12"), D("2026-01-18"), 7, False, D("2026-01-18"))
    assert one(w03, kpi_id="starts_vol").value == 21.0
    zero = one(w03, kpi_id="quotes_vol")
    assert (zero.numerator, zero.value, int(zero.days_with_data)) == (0.0, 0.0, 0)
    assert pd.isna(zero.denominator)
    conv3 = one(w03, kpi_id="conv")
    assert (conv3.numerator, conv3.denominator) == (7 * 2 + 7 * 1.0, 7 * 100 + 7 * 10.0)

    # Conversion days: Jan 5 and 6 are covered by site A only, so they are not days of the
    # rate at all; Jan 7 is (2 + 1) / (100 + 10).
    days = values[(values.kpi_id == "conv") & (values.grain == "day")]
    assert sorted(days.start) == [D(f"2026-01-{d:02d}") for d in range(7, 19)]
    jan7 = one(days, start=D("2026-01-07"))
    assert (jan7.numerator, jan7.denominator, bool(jan7.is_partial)) == (3.0, 110.0, False)


def test_a_late_source_period_is_judged_on_its_own_covered_days(gap_project: Project):
    scores = gap_project.read(
        "select kpi_id, period_start, expected, status from marts.kpi_scores "
        "where grain = 'week' and segment_type = 'all'"
    )
    scores["start"] = scores["period_start"].map(day)
    # Volume path 10 -> 374 (+1 a day). starts_vol W02, Jan 5..11 (offsets 4..10): 17;
    # quotes_vol W02, Jan 7..11 (offsets 6..10, midpoint 8): 18; W03 (11..17): 24.
    assert one(scores, kpi_id="starts_vol", start=D("2026-01-05")).expected == pytest.approx(17)
    assert one(scores, kpi_id="quotes_vol", start=D("2026-01-05")).expected == pytest.approx(18)
    w03 = one(scores, kpi_id="quotes_vol", start=D("2026-01-12"))
    # 0 quote requests against 24 expected, band 2.4: off_track (a real 0 is scored).
    assert (w03.expected, w03.status) == (pytest.approx(24), "off_track")
    # Conversion W02 judged on Jan 7..11: 0.01 + 0.02 * 8 / 364.
    conv = one(scores, kpi_id="conv", start=D("2026-01-05"))
    assert conv.expected == pytest.approx(0.01 + 0.02 * 8 / 364, rel=1e-12)


# -- 9. unclaimed traffic is listed --------------------------------------------------------

UNMAPPED_PLAN = """\
id: unmapped
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {id: email_news, channel: email, match: [{source: newsletter, medium: email}]}
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.01, as_of: 2026-01-01}
        target: {value: 0.03, by: 2026-12-31}
        grains: [week]
        segments: [tactic]
"""
UNMAPPED_CSV = "\n".join(
    [
        HEADER,
        "2026-01-05,newsletter,email,jan_promo,/,desktop,100,60,10",
        "2026-01-05,Promo_Blast,Email,Spring_Sale,/,desktop,40,20,3",
        "2026-01-06,promo_blast,email,spring_sale,/,mobile,60,30,2",
        "2026-01-06,google,organic,seo,/,mobile,500,200,5",
    ]
)


def test_unmapped_traffic_lists_an_unclaimed_email_like_row(tmp_path: Path):
    project = make_project(
        tmp_path,
        UNMAPPED_PLAN,
        {"exports/2026-01.csv": UNMAPPED_CSV + "\n"},
        f"duckdb:///{tmp_path / 'kpi.duckdb'}",
    )
    project.run("2026-01-05", "2026-01-06")
    unmapped = project.read("select * from marts.unmapped_traffic")
    assert list(unmapped.columns) == [
        "source",
        "medium",
        "campaign",
        "sessions",
        "key_events",
        "emails_sent",
        "emails_delivered",
        "email_unique_clicks",
        "first_seen",
        "last_seen",
    ]
    rows = unmapped.set_index(["source", "medium", "campaign"])
    # The newsletter row is claimed by email_news; the other two are not.
    assert sorted(rows.index) == [
        ("google", "organic", "seo"),
        ("promo_blast", "email", "spring_sale"),
    ]
    # promo_blast / email / spring_sale (UTMs lower-cased): 40 + 60 = 100 sessions, 3 + 2 = 5
    # key events on Jan 5 and 6; no email source, so the email sums are NULL.
    promo = rows.loc[("promo_blast", "email", "spring_sale")]
    assert (promo.sessions, promo.key_events) == (100.0, 5.0)
    assert promo[["emails_sent", "emails_delivered", "email_unique_clicks"]].isna().all()
    assert (day(promo.first_seen), day(promo.last_seen)) == (D("2026-01-05"), D("2026-01-06"))
    organic = rows.loc[("google", "organic", "seo")]
    assert (organic.sessions, organic.key_events) == (500.0, 5.0)
    assert day(organic.first_seen) == day(organic.last_seen) == D("2026-01-06")
