"""Data checks end to end: each failure injected into a real warehouse (DuckDB, then
PostgreSQL), the real daily job run, and the exact check, severity, blocked assets, flags and
recorded results asserted; plus a clean run that passes every check.

Dates are relative to today (see `checks_project`): the export ends yesterday, so a clean run
is fresh. Values are computed by hand from the steady export: 120 sessions a day (google 100,
newsletter 20), 3 key events, 3 form starts and 2 submits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from checks_project import (
    GA4_KPIS,
    GA4_SOURCES,
    HISTORY_START,
    SUNDAY,
    TODAY,
    WEEK_START,
    YESTERDAY,
    Project,
    all_assets,
    blocked_by,
    days,
    declared_checks,
    evaluations,
    failed_checks,
    fake_ga4_module,
    materialized,
    metadata,
    plan_text,
    sample_of,
    steady_rows,
)

from kpi_pipeline.checks import gx_runner
from kpi_pipeline.checks.gx_runner import run_suites
from kpi_pipeline.checks.suites import RunWindow, Suite, mart_suites, model_suites, raw_suites
from kpi_pipeline.lib.checks import Expect
from kpi_pipeline.metrics.plan_tables import PLAN_SOURCES
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.quality import QualityConfig
from kpi_pipeline.runs import CheckSummary, check_summary, step_failures
from kpi_pipeline.sources.csv_export import CSV_TRAFFIC
from kpi_pipeline.sources.ga4.reports import GA4_EVENTS
from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG
from kpi_pipeline.warehouse.sql_models import SqlModel

ALL_DAYS = days(HISTORY_START, YESTERDAY)
N_DAYS = len(ALL_DAYS)
BLOCKED_ERROR = "blocking asset check failed with ERROR severity:\n"
SEVERITY_OF = QualityConfig().severity_of


@pytest.fixture(scope="module", autouse=True)
def _gx_imported_before_the_first_run():
    """Import Great Expectations before this module's first run.

    The `plan_tables` step starts importing GX in a background thread (`gx_runner.prefetch`)
    while the main thread goes on importing SQLAlchemy modules; in a fresh process that race
    fails about one run in three (`partially initialized module 'sqlalchemy.orm.exc'`), a
    product bug reported separately. Importing GX first keeps these tests about the checks.
    """
    gx_runner._gx()


@pytest.fixture
def project(tmp_path: Path, warehouse_url: str) -> Project:
    """The tiny plan (id `chk`) and a steady export from the history's start to yesterday."""
    project = Project(tmp_path / "project", warehouse_url)
    project.write_plan()
    project.write_export(steady_rows())
    return project


def _day(value: object) -> dt.date:
    return pd.Timestamp(value).date()


def _declare_source(wh, source_id: str, kind: str) -> None:
    """`plan.sources` as a run writes it before any source (raw checks read by source)."""
    row = pd.DataFrame([(source_id, kind, True)], columns=PLAN_SOURCES.column_names)
    wh.rewrite_table(PLAN_SOURCES, row)


def _insert_traffic(
    project: Project, day: dt.date, sessions: int = 100, engaged: int = 50, source: str = "google"
) -> None:
    """One row written around the loader, as a manual fix-up would."""
    project.execute(
        "insert into raw.csv_traffic (source_id, date, source, medium, campaign, landing_page, "
        "device, sessions, engaged_sessions, key_events, file, line) values ('export', :day, "
        ":source, 'organic', '(not set)', '/', 'mobile', :sessions, :engaged, 1, 'fixup.sql', 2)",
        {"day": day, "source": source, "sessions": sessions, "engaged": engaged},
    )


# -- a clean run --------------------------------------------------------------------------


def test_clean_run_passes_every_check(project):
    result = project.run(HISTORY_START, YESTERDAY)
    assert result.success, step_failures(result)
    defs = project.definitions()

    # Every check the Definitions declare was evaluated once, and passed: freshness too, as
    # the export ends yesterday (its last covered day may be yesterday less one day of lag).
    evaluated = evaluations(result)
    assert set(evaluated) == declared_checks(defs)
    assert failed_checks(result) == {}
    assert check_summary(result) == CheckSummary(len(evaluated), [])
    assert materialized(result) == all_assets(defs)

    results = project.check_results(result.run_id)
    assert set(zip(results["asset"], results["check_name"], strict=True)) == set(evaluated)
    assert results["passed"].astype(bool).all()
    assert (results["failing_rows"] == 0).all()
    fresh = results.set_index(["asset", "check_name"]).loc[("raw/csv_traffic", "freshness")]
    assert (fresh["observed_value"], fresh["checked_rows"]) == ("0 of 1 row(s) fail", 1)
    assert f"on or after {TODAY - dt.timedelta(days=2)}" in fresh["description"]
    keys = results.set_index(["asset", "check_name"]).loc[("raw/csv_traffic", "keys_unique")]
    assert keys["observed_value"] == f"0 of {2 * N_DAYS} row(s) fail"

    # Nothing flagged, nothing held.
    assert project.check_flags() == set()
    assert project.flags_of("kpi_values", "quality_flags") == {}
    assert project.flags_of("kpi_scores", "hold_reason") == {}


# -- duplicate keys -----------------------------------------------------------------------


def test_duplicate_raw_rows_fail_keys_unique_and_block_everything_downstream(project):
    # Two copies of a row written around the loader, dated before the plan's history: no run
    # replaces that day, and the raw check reads rows dated outside the history.
    stray = HISTORY_START - dt.timedelta(days=1)
    with project.warehouse() as wh:
        wh.ensure_table(CSV_TRAFFIC)
    _insert_traffic(project, stray)
    _insert_traffic(project, stray)

    result = project.run(HISTORY_START, YESTERDAY)
    defs = project.definitions()

    assert not result.success
    # These rows are dated before the history too: dates_in_history fails with keys_unique.
    expected = {
        ("raw/csv_traffic", "keys_unique"): "error",
        ("raw/csv_traffic", "dates_in_history"): "error",
    }
    assert failed_checks(result) == expected
    checked = 2 * N_DAYS + 2
    summary = check_summary(result).failed
    assert summary[0] == (
        f"check keys_unique on raw/csv_traffic failed (error): 2 of {checked} row(s) fail"
    )
    assert len(summary) == len(expected)
    failures = step_failures(result)
    assert list(failures) == ["csv_exports"]
    assert (
        "2 blocking asset checks failed with ERROR severity:\n"
        "raw/csv_traffic: keys_unique,dates_in_history"
    ) in failures["csv_exports"]
    evaluation = evaluations(result)[("raw/csv_traffic", "keys_unique")]
    assert {k: metadata(evaluation)[k] for k in ("failing_rows", "checked_rows")} == {
        "failing_rows": 2,
        "checked_rows": checked,
    }

    # The load itself was written; everything downstream of the step waited.
    blocked = blocked_by(defs, "raw/csv_traffic")
    assert {
        "staging/stg_csv__traffic",
        "staging/stg_csv__events",
        "marts/kpi_values",
        "marts/kpi_scores",
        "marts/alert_state",
        "marts/kpi_snapshots",
    } <= blocked
    assert {"raw/csv_traffic", "raw/csv_events"} <= materialized(result)
    assert all_assets(defs) - materialized(result) == blocked

    sample = sample_of(project.check_results(result.run_id), "raw/csv_traffic", "keys_unique")
    assert [
        (r["source_id"], r["date"][:10], r["source"], r["device"], r["file"]) for r in sample
    ] == [("export", stray.isoformat(), "google", "mobile", "fixup.sql")] * 2


def test_duplicate_outside_the_runs_days_is_caught_by_the_staging_model(project):
    first = project.run(HISTORY_START, YESTERDAY)
    assert first.success, step_failures(first)
    values = project.read("select * from marts.kpi_values")
    # A second copy of the first day's google row, written by hand (no loader recorded it).
    _insert_traffic(project, HISTORY_START)

    # The next run (yesterday only) recomputes yesterday's periods: it neither reads nor
    # re-checks that day, and what it publishes does not count the copy.
    daily = project.run(YESTERDAY, YESTERDAY)
    assert daily.success, step_failures(daily)
    assert evaluations(daily)[("staging/stg_csv__traffic", "keys_unique")].passed
    pd.testing.assert_frame_equal(
        project.read("select * from marts.kpi_values").sort_values(
            ["kpi_id", "grain", "period_start", "segment_type", "segment"], ignore_index=True
        ),
        values.sort_values(
            ["kpi_id", "grain", "period_start", "segment_type", "segment"], ignore_index=True
        ),
    )

    # A full rebuild reads every row: the staging model's key check stops it there.
    result = project.run(YESTERDAY, YESTERDAY, tags={FULL_REFRESH_TAG: "1"})

    assert not result.success
    assert evaluations(result)[("raw/csv_traffic", "keys_unique")].passed
    assert failed_checks(result) == {("staging/stg_csv__traffic", "keys_unique"): "error"}
    checked = 2 * N_DAYS + 1
    assert check_summary(result).failed == [
        f"check keys_unique on staging/stg_csv__traffic failed (error): 2 of {checked} row(s) fail"
    ]
    failures = step_failures(result)
    assert list(failures) == ["staging__stg_csv__traffic"]
    assert failures["staging__stg_csv__traffic"].endswith(
        f"1 {BLOCKED_ERROR}staging/stg_csv__traffic: keys_unique"
    )
    defs = project.definitions()
    blocked = blocked_by(defs, "staging/stg_csv__traffic")
    assert {
        "intermediate/int_web_analytics__measures",
        "marts/kpi_values",
        "marts/kpi_scores",
        "marts/alert_state",
        "marts/kpi_snapshots",
    } <= blocked
    assert all_assets(defs) - materialized(result) == blocked
    # Scoring waited: the only snapshots are the clean runs'.
    snapshots = project.read("select distinct run_id from marts.kpi_snapshots")
    assert set(snapshots["run_id"]) == {first.run_id, daily.run_id}

    sample = sample_of(
        project.check_results(result.run_id), "staging/stg_csv__traffic", "keys_unique"
    )
    keys = ["source_id", "source", "medium", "campaign", "landing_page", "device"]
    assert [(r["date"][:10], *(r[k] for k in keys)) for r in sample] == [
        (HISTORY_START.isoformat(), "export", "google", "organic", "(not set)", "/", "mobile")
    ] * 2


def test_duplicate_keys_from_a_bad_join_fail_the_models_keys_unique(tmp_path, warehouse_url):
    """A model joining traffic to tactic rules on `source` alone: two rules claim google, so
    its one google row comes out twice, and the model's `-- keys:` check names both."""
    project = Project(tmp_path, warehouse_url, plan_id="chkjoin")
    with project.warehouse() as wh:
        wh.ensure_schema("intermediate")
    for sql in (
        "create table intermediate.traffic (source text, medium text, sessions bigint)",
        "insert into intermediate.traffic values ('google', 'organic', 100), "
        "('newsletter', 'email', 20)",
        "create table intermediate.rules (source text, tactic_id text)",
        "insert into intermediate.rules values ('google', 'seo'), ('google', 'brand'), "
        "('newsletter', 'email_news')",
        "create table intermediate.int_bad_join as select t.source, t.medium, r.tactic_id, "
        "t.sessions from intermediate.traffic as t inner join intermediate.rules as r "
        "on r.source = t.source",
    ):
        project.execute(sql)
    model = SqlModel(
        name="int_bad_join",
        layer="intermediate",
        path=Path("int_bad_join.sql"),
        template="",
        refs=(),
        sources=(),
        materialized="table",
        grain="one row per source and medium",
        description="",
        keys=("source", "medium"),
    )

    with project.warehouse() as wh:
        outcomes = run_suites(wh, model_suites([model]), {}, SEVERITY_OF)

    unique, not_null = outcomes
    assert (unique.asset, unique.check, unique.severity, unique.passed) == (
        ("intermediate", "int_bad_join"),
        "keys_unique",
        "error",
        False,
    )
    assert (unique.failing_rows, unique.checked_rows, unique.observed) == (
        2,
        3,
        "2 of 3 row(s) fail",
    )
    assert unique.sample[["source", "medium"]].values.tolist() == [["google", "organic"]] * 2
    assert unique.flagged.empty  # a model's rows name no source day
    assert (not_null.check, not_null.passed, not_null.failing_rows) == ("keys_not_null", True, 0)


# -- values a source cannot have ------------------------------------------------------------


@pytest.fixture
def ga4_fake(monkeypatch):
    """The fake GA4 Data API of tests/sources/ga4 on loopback, the plan's clients pointed at it."""
    module = fake_ga4_module()
    fake = module.FakeGa4()
    with module.serve(fake) as target:
        monkeypatch.setenv("KPI_GA4_ENDPOINT", target)
        monkeypatch.setenv("CHECKS_GA4_CREDENTIALS", "/secret/place/key.json")
        yield fake


def test_engaged_above_sessions_from_ga4_fails_engaged_le_sessions_and_blocks(
    tmp_path, warehouse_url, ga4_fake
):
    """GA4 reports what it reports: a day whose newsletter row has 60 engaged sessions out of
    50 loads as sent (the CSV reader would quarantine it), and the raw check must stop it."""
    first, bad_day = YESTERDAY - dt.timedelta(days=2), YESTERDAY - dt.timedelta(days=1)
    project = Project(tmp_path / "ga4", warehouse_url, plan_id="chkga4")
    project.write_plan(plan_text("chkga4", history_start=first, sources=GA4_SOURCES, kpis=GA4_KPIS))
    for day in days(first, YESTERDAY):
        ga4_fake.traffic(day, "google", "organic", "(not set)", "100", "50", "1", device="mobile")
        engaged = "60" if day == bad_day else "25"
        ga4_fake.traffic(day, "newsletter", "email", "news", "50", engaged, "2")

    result = project.run(first, YESTERDAY)

    assert failed_checks(result) == {("raw/ga4_traffic", "engaged_le_sessions"): "error"}
    assert not result.success
    assert check_summary(result).failed == [
        "check engaged_le_sessions on raw/ga4_traffic failed (error): 1 of 6 row(s) fail"
    ]
    failures = step_failures(result)
    assert list(failures) == ["ga4_reports"]
    assert failures["ga4_reports"].endswith(
        f"1 {BLOCKED_ERROR}raw/ga4_traffic: engaged_le_sessions"
    )
    defs = project.definitions()
    blocked = blocked_by(defs, "raw/ga4_traffic")
    assert {"staging/stg_ga4__traffic", "marts/kpi_values", "marts/kpi_scores"} <= blocked
    assert "marts/alert_state" in blocked
    assert all_assets(defs) - materialized(result) == blocked
    sample = sample_of(
        project.check_results(result.run_id), "raw/ga4_traffic", "engaged_le_sessions"
    )
    assert [
        (r["date"][:10], r["source"], r["sessions"], r["engaged_sessions"]) for r in sample
    ] == [(bad_day.isoformat(), "newsletter", 50, 60)]


def test_engaged_above_sessions_written_into_csv_traffic_fails_engaged_le_sessions(
    tmp_path, warehouse_url
):
    """The README lists `engaged_le_sessions` on raw.csv_traffic too. The CSV reader
    quarantines such rows, so one that gets there was written around it (an INSERT): the raw
    check must still name it."""
    project = Project(tmp_path, warehouse_url, plan_id="chkcsv")
    with project.warehouse() as wh:
        wh.ensure_table(CSV_TRAFFIC)
        _declare_source(wh, "export", "csv_exports")
    _insert_traffic(project, YESTERDAY)
    _insert_traffic(project, YESTERDAY, sessions=50, engaged=60, source="newsletter")
    window = RunWindow(YESTERDAY, YESTERDAY, HISTORY_START, TODAY)
    symbols = {
        "history_start": HISTORY_START.isoformat(),
        "today": TODAY.isoformat(),
        "events_per_session_max": 10.0,
    }

    with project.warehouse() as wh:
        outcomes = run_suites(wh, raw_suites([CSV_TRAFFIC], window), symbols, SEVERITY_OF)

    failing = {o.check: (o.severity, o.failing_rows) for o in outcomes if not o.passed}
    assert failing == {"engaged_le_sessions": ("error", 1)}, (
        f"checks of raw/csv_traffic: {[o.check for o in outcomes]}"
    )
    (engaged,) = [o for o in outcomes if o.check == "engaged_le_sessions"]
    assert engaged.sample[["source", "sessions", "engaged_sessions"]].values.tolist() == [
        ["newsletter", 50, 60]
    ]


def test_each_raw_check_reports_its_own_failure(tmp_path, warehouse_url):
    """One GA4 event row dated before the plan's history: `dates_in_history` fails on it,
    and no other check of the table (its keys are whole)."""
    project = Project(tmp_path, warehouse_url, plan_id="chkevents")
    day, history_start = YESTERDAY, YESTERDAY - dt.timedelta(days=7)
    early = history_start - dt.timedelta(days=3)
    with project.warehouse() as wh:
        wh.ensure_table(GA4_EVENTS)
        _declare_source(wh, "site", "ga4")
    for when in (day, early):
        project.execute(
            "insert into raw.ga4_events (source_id, date, event_name, source, medium, campaign, "
            "device, event_count, property_id) values ('site', :day, 'form_start', 'google', "
            "'cpc', 'brand', 'mobile', 3, '123456')",
            {"day": when},
        )
    window = RunWindow(day, day, history_start, TODAY)
    symbols = {"history_start": history_start.isoformat(), "today": TODAY.isoformat()}

    with project.warehouse() as wh:
        outcomes = run_suites(wh, raw_suites([GA4_EVENTS], window), symbols, SEVERITY_OF)

    failing = {
        o.check: (o.severity, o.failing_rows, o.checked_rows) for o in outcomes if not o.passed
    }
    assert failing == {"dates_in_history": ("error", 1, 2)}
    (dated,) = [o for o in outcomes if o.check == "dates_in_history"]
    assert [_day(d) for d in dated.sample["date"]] == [early]
    assert dated.flagged.assign(date=dated.flagged["date"].map(_day)).values.tolist() == [
        ["site", early]
    ]


def test_a_check_gx_cannot_evaluate_says_so(tmp_path, warehouse_url):
    """A suite naming a column its query lacks (a model whose `-- keys:` header is wrong):
    the outcome fails and says GX could not evaluate it, rather than the step crashing."""
    project = Project(tmp_path, warehouse_url, plan_id="chkbroken")
    with project.warehouse() as wh:
        wh.ensure_schema("intermediate")
    project.execute("create table intermediate.broken as select 'google' as source")
    suite = Suite(
        ("intermediate", "broken"),
        "select source from intermediate.broken",
        (Expect("keys_not_null", "not_null", ("medium",), "medium never null"),),
    )

    with project.warehouse() as wh:
        (outcome,) = run_suites(wh, [suite], {}, SEVERITY_OF)

    assert (outcome.check, outcome.passed, outcome.severity) == ("keys_not_null", False, "error")
    assert outcome.observed.startswith("GX could not evaluate it: "), outcome.observed


# -- marts ----------------------------------------------------------------------------------


def test_rate_above_one_fails_rate_and_numerator_checks(project):
    result = project.run(HISTORY_START, YESTERDAY)
    assert result.success, step_failures(result)
    week = "kpi_id = 'conv' and grain = 'week' and period_start = :start and segment_type = 'all'"
    before = project.read(
        f"select numerator, denominator, value from marts.kpi_values where {week}",
        {"start": WEEK_START},
    )
    # 7 days x 3 key events over 7 x 120 sessions.
    assert before[["numerator", "denominator"]].values.tolist() == [[21.0, 840.0]]
    # A join that counted every key event half again: 1260 of 840 sessions, a rate of 1.5.
    updated = project.execute(
        f"update marts.kpi_values set value = 1.5, numerator = 1260 where {week}",
        {"start": WEEK_START},
    )
    assert updated == 1

    plan = load_plan(project.plan_path).plan
    with project.warehouse() as wh:
        outcomes = run_suites(wh, mart_suites()[:1], {}, plan.quality.severity_of)

    # Both warn by default (README: a day may see more submits than starts when visits
    # straddle midnight).

    # Rate rows with a value: conv by day (all, desktop, mobile), conv by week (the same
    # three), task by week (all).
    weeks = len({d - dt.timedelta(days=d.weekday()) for d in ALL_DAYS})
    checked = 3 * N_DAYS + 3 * weeks + weeks
    assert [
        (o.asset, o.check, o.severity, o.passed, o.failing_rows, o.checked_rows, o.observed)
        for o in outcomes
    ] == [
        (("marts", "kpi_values"), check, "warn", False, 1, checked, f"1 of {checked} row(s) fail")
        for check in ("rate_in_unit_interval", "numerator_le_denominator")
    ]
    for outcome in outcomes:
        (row,) = outcome.sample.to_dict("records")
        assert (row["kpi_id"], row["grain"], _day(row["period_start"]), row["segment_type"]) == (
            "conv",
            "week",
            WEEK_START,
            "all",
        )
        assert (row["value"], row["numerator"], row["denominator"]) == (1.5, 1260.0, 840.0)


# -- warnings: volume, quarantine, freshness ----------------------------------------------

DROP_DAY = SUNDAY - dt.timedelta(days=3)  # Thursday of the last closed week
BURST_DAY = SUNDAY - dt.timedelta(days=1)  # its Saturday
DROPPED = [  # 10 % of a steady day's 120 sessions
    "{day},google,organic,,/,mobile,10,5,1,2,1",
    "{day},newsletter,email,news,/,desktop,2,1,1,1,1",
]
BAD_ROWS = [  # sessions that are no number: quarantined
    "{day},bing,organic,,/,mobile,abc,10,2,1,1",
    "{day},bing,cpc,,/,mobile,xyz,10,2,1,1",
]


def test_traffic_drop_and_quarantine_burst_warn_flag_their_days_and_hold_alerts(project):
    project.write_export(steady_rows(instead={DROP_DAY: DROPPED}, extra={BURST_DAY: BAD_ROWS}))

    result = project.run(HISTORY_START, YESTERDAY)

    # Warnings: the run goes on to the end.
    assert result.success, step_failures(result)
    assert materialized(result) == all_assets(project.definitions())
    assert failed_checks(result) == {
        ("raw/csv_traffic", "volume_anomaly"): "warn",
        ("raw/csv_traffic", "quarantine_rate"): "warn",
    }
    assert check_summary(result).failed == [
        f"check volume_anomaly on raw/csv_traffic failed (warn): 1 of {N_DAYS} row(s) fail",
        f"check quarantine_rate on raw/csv_traffic failed (warn): 1 of {N_DAYS} row(s) fail",
    ]
    checks = evaluations(result)
    for check in ("volume_anomaly", "quarantine_rate"):
        found = metadata(checks[("raw/csv_traffic", check)])
        assert {k: found[k] for k in ("failing_rows", "checked_rows", "flagged_days")} == {
            "failing_rows": 1,
            "checked_rows": N_DAYS,
            "flagged_days": 1,
        }

    # marts.check_results: exactly these two failed, as recorded for the run.
    results = project.check_results(result.run_id)
    assert len(results) == len(checks)
    failed = results[~results["passed"].astype(bool)]
    assert failed[
        ["asset", "check_name", "severity", "passed", "observed_value", "failing_rows"]
    ].values.tolist() == [
        ["raw/csv_traffic", "quarantine_rate", "warn", False, f"1 of {N_DAYS} row(s) fail", 1],
        ["raw/csv_traffic", "volume_anomaly", "warn", False, f"1 of {N_DAYS} row(s) fail", 1],
    ]
    # The drop: 12 sessions against 28 days of 120 (MAD 0: a band of 10 % either way).
    (drop,) = sample_of(results, "raw/csv_traffic", "volume_anomaly")
    assert {**drop, "date": drop["date"][:10]} == {
        "source_id": "export",
        "date": DROP_DAY.isoformat(),
        "volume": 12.0,
        "median": 120.0,
        "scaled_mad": 0.0,
        "low": 108.0,
        "high": 132.0,
        "within_band": False,
    }
    # The burst: 2 of the day's 4 rows quarantined.
    (burst,) = sample_of(results, "raw/csv_traffic", "quarantine_rate")
    assert {**burst, "date": burst["date"][:10]} == {
        "source_id": "export",
        "date": BURST_DAY.isoformat(),
        "loaded": 2,
        "quarantined": 2,
        "quarantine_rate": 0.5,
    }

    # Each failing source day is flagged, named after its check, up to the KPIs' periods and
    # the hold on their alerts (a CSV export is final: no provisional window).
    run_id = result.run_id
    assert project.check_flags() == {
        ("export", DROP_DAY, "raw/csv_traffic", "volume_anomaly", "warn", run_id),
        ("export", BURST_DAY, "raw/csv_traffic", "quarantine_rate", "warn", run_id),
    }
    both = "check:quarantine_rate,check:volume_anomaly"
    expected = {
        ("day", DROP_DAY): "check:volume_anomaly",
        ("day", BURST_DAY): "check:quarantine_rate",
        ("week", WEEK_START): both,
    }
    assert project.flags_of("kpi_values", "quality_flags") == expected
    assert project.flags_of("kpi_values", "quality_flags", kpi_id="task") == {
        ("week", WEEK_START): both
    }
    assert project.flags_of("kpi_scores", "hold_reason") == expected
    segments = project.read(
        "select distinct segment, quality_flags from marts.kpi_values where kpi_id = 'conv' "
        "and grain = 'day' and period_start = :day",
        {"day": DROP_DAY},
    )
    assert sorted(segments.itertuples(index=False, name=None)) == [
        ("all", "check:volume_anomaly"),
        ("desktop", "check:volume_anomaly"),
        ("mobile", "check:volume_anomaly"),
    ]

    # The export is corrected and the day re-run: its flag is re-decided (gone), the
    # burst's (another day) stays.
    project.write_export(steady_rows(extra={BURST_DAY: BAD_ROWS}))
    rerun = project.run(DROP_DAY, DROP_DAY)
    assert rerun.success, step_failures(rerun)
    assert failed_checks(rerun) == {}
    assert project.check_flags() == {
        ("export", BURST_DAY, "raw/csv_traffic", "quarantine_rate", "warn", run_id)
    }
    assert project.flags_of("kpi_values", "quality_flags") == {
        ("day", BURST_DAY): "check:quarantine_rate",
        ("week", WEEK_START): "check:quarantine_rate",
    }


def test_a_day_with_no_rows_left_is_flagged(project):
    """The worst bursts: a day whose every row was quarantined, and a day the export spans
    with no row at all. Both have 0 sessions (a 100 % drop), the first a quarantine rate of
    1; neither may pass as a quiet day."""
    all_bad, empty = SUNDAY - dt.timedelta(days=2), SUNDAY - dt.timedelta(days=4)
    project.write_export(steady_rows(instead={all_bad: BAD_ROWS, empty: []}))

    result = project.run(HISTORY_START, YESTERDAY)

    assert result.success, step_failures(result)
    flags = {(day, check) for _, day, _, check, _, _ in project.check_flags()}
    assert failed_checks(result).get(("raw/csv_traffic", "quarantine_rate")) == "warn", (
        f"every row of {all_bad} was quarantined, yet quarantine_rate passed"
    )
    assert (all_bad, "quarantine_rate") in flags
    assert failed_checks(result).get(("raw/csv_traffic", "volume_anomaly")) == "warn", (
        f"{all_bad} and {empty} have 0 sessions against 120 a day, yet volume_anomaly passed"
    )
    assert flags == {
        (all_bad, "quarantine_rate"),
        (all_bad, "volume_anomaly"),
        (empty, "volume_anomaly"),
    }


def test_stale_source_warns_then_blocks_when_freshness_is_an_error(project):
    last = YESTERDAY - dt.timedelta(days=7)
    project.write_export(steady_rows(last=last))

    warned = project.run(HISTORY_START, last)

    assert warned.success, step_failures(warned)
    assert failed_checks(warned) == {("raw/csv_traffic", "freshness"): "warn"}
    assert check_summary(warned).failed == [
        "check freshness on raw/csv_traffic failed (warn): 1 of 1 row(s) fail"
    ]
    results = project.check_results(warned.run_id)
    (stale,) = sample_of(results, "raw/csv_traffic", "freshness")
    assert {**stale, "last_day": stale["last_day"][:10]} == {
        "source_id": "export",
        "last_day": last.isoformat(),
    }
    fresh = results.set_index(["asset", "check_name"]).loc[("raw/csv_traffic", "freshness")]
    assert f"on or after {TODAY - dt.timedelta(days=2)}" in fresh["description"]
    assert project.check_flags() == set()  # staleness names no day to hold

    project.write_plan(plan_text(quality="{severity: {freshness: error}}"))
    blocked_run = project.run(last, last)

    assert not blocked_run.success
    assert failed_checks(blocked_run) == {("raw/csv_traffic", "freshness"): "error"}
    assert check_summary(blocked_run).failed == [
        "check freshness on raw/csv_traffic failed (error): 1 of 1 row(s) fail"
    ]
    failures = step_failures(blocked_run)
    assert list(failures) == ["csv_exports"]
    assert failures["csv_exports"].endswith(f"1 {BLOCKED_ERROR}raw/csv_traffic: freshness")
    defs = project.definitions()
    blocked = blocked_by(defs, "raw/csv_traffic")
    assert {"marts/kpi_values", "marts/kpi_scores", "marts/alert_state"} <= blocked
    assert all_assets(defs) - materialized(blocked_run) == blocked
