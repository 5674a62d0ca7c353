"""Every row has an owner: GA4 next to a CSV export, plan by plan, day by day.

Three scenarios, each on a DuckDB file and on a fresh PostgreSQL database:

1. Switching `traffic_source` CSV -> GA4 -> CSV gives the KPI values of a warehouse that only
   ever had the chosen source (never the sum of both).
2. The command printed when GA4's daily quota runs out, run exactly as printed from another
   folder, resumes that plan and leaves another plan of the same warehouse untouched.
3. GA4 answering a day with no rows where rows were loaded keeps them and fails the run,
   until the run allows missing days.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import CSV_EXPORT, GA4_PLAN, MON, TUE, WED, fill_tiny_week
from fake_ga4 import DAILY_QUOTA, FakeGa4, day_of, report_of

from kpi_pipeline.definitions import DEFAULT_PLAN
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.sources.demo_data import write_demo_exports
from kpi_pipeline.warehouse.engine import read_frame_once

CSV_BLOCK = """\
  csv_exports:
    - id: old_export
      path: exports/*.csv
      event_columns: {form_start: form_start, form_submit: form_submit}
"""
GA4_BLOCK = """\
  ga4:
    - id: site
      property_id: "123456"
      credentials_env_var: TINY_GA4_CREDENTIALS
      lookback_days: 3
      page_size: 2
"""
KEY = ["kpi_id", "grain", "period_label", "segment_type", "segment"]


def plan_text(traffic_source: str | None, *, csv: bool = True, ga4: bool = True) -> str:
    """GA4_PLAN's organization, measures and KPIs with the sources asked for."""
    text = GA4_PLAN.format(lookback=3)
    head, rest = text.split("sources:\n")
    _, tail = rest.split("measures:\n")
    sources = f"  traffic_source: {traffic_source}\n" if traffic_source else ""
    sources += (GA4_BLOCK if ga4 else "") + (CSV_BLOCK if csv else "")
    return f"{head}sources:\n{sources}measures:\n{tail}"


@dataclass
class Project:
    """A plan folder (plan.yaml, exports/2026-01.csv) and the warehouse it runs into."""

    root: Path
    warehouse_url: str
    plan_id: str = "plan"

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.yaml"

    @classmethod
    def create(cls, root: Path, warehouse_url: str, text: str) -> Project:
        (root / "exports").mkdir(parents=True)
        (root / "exports" / "2026-01.csv").write_text(CSV_EXPORT, encoding="utf-8")
        (root / "plan.yaml").write_text(text, encoding="utf-8")
        return cls(root, warehouse_url)

    def write_plan(self, text: str) -> None:
        self.plan_path.write_text(text, encoding="utf-8")

    def run(self, first: dt.date, last: dt.date, tags: dict[str, str] | None = None):
        return run_days(self.plan_path, first, last, warehouse_url=self.warehouse_url, tags=tags)

    def read(self, sql: str) -> pd.DataFrame:
        return read_frame_once(self.warehouse_url, sql, plan_id=self.plan_id)

    def kpi_values(self) -> pd.DataFrame:
        """All of `marts.kpi_values`, in a stable order."""
        frame = self.read("select * from {marts}.kpi_values")
        return frame.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(params=["duckdb", "postgresql"])
def new_warehouse(request, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Fresh, empty warehouses of one engine, as many as the test asks for."""
    made: list[str] = []
    server = None

    def new() -> str:
        nonlocal server
        if request.param == "duckdb":
            url = f"duckdb:///{tmp_path / f'kpi_{len(made)}.duckdb'}"
        elif not made:
            url = request.getfixturevalue("postgres_url")
        else:
            server = request.getfixturevalue("postgres_server")
            url = server.url_for(server.create_database())
        made.append(url)
        return url

    yield new
    if server is not None:
        for url in made[1:]:
            server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def ga4_env(ga4_target: str, monkeypatch) -> str:
    monkeypatch.setenv("KPI_GA4_ENDPOINT", ga4_target)
    # Production reads the key file named here; the loopback fake needs none.
    monkeypatch.setenv("TINY_GA4_CREDENTIALS", "/secret/place/key.json")
    return ga4_target


def figures(values: pd.DataFrame) -> dict[tuple, tuple]:
    """(kpi, grain, period, segment) -> (numerator, denominator, value)."""
    return {
        (r.kpi_id, r.grain, r.period_label, r.segment): (r.numerator, r.denominator, r.value)
        for r in values.itertuples()
    }


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert len(failures) == 1, step_failures(result)
    return failures[0].step_failure_data.user_failure_data.description


W02 = "2026-W02"
# The CSV export: 2026-01-05 newsletter/email/jan_promo, sessions 5000, engaged 4000, key
# events 900, form starts 40, form submits 30 (matched by the email_news tactic).
CSV_FIGURES = {
    ("conv", "day", "2026-01-05", "all"): (900.0, 5000.0, 0.18),
    ("conv", "day", "2026-01-05", "email_news"): (900.0, 5000.0, 0.18),
    ("conv", "week", W02, "all"): (900.0, 5000.0, 0.18),
    ("conv", "week", W02, "email_news"): (900.0, 5000.0, 0.18),
    ("eng", "week", W02, "all"): (4000.0, 5000.0, 0.8),
    ("task", "week", W02, "all"): (30.0, 40.0, 0.75),
}
# fill_tiny_week: Monday newsletter 100 sessions / 60 engaged / 10 key events and organic
# 900 / 400 / 9; Tuesday Brand_Search cpc 10 / 5 / 5; Wednesday organic 100 / 50 / 1;
# form starts 4 + 6, submits 2 + 3. Organic traffic matches no tactic: `unattributed`.
GA4_FIGURES = {
    ("conv", "day", "2026-01-05", "all"): (19.0, 1000.0, 0.019),
    ("conv", "day", "2026-01-05", "email_news"): (10.0, 100.0, 0.1),
    ("conv", "day", "2026-01-05", "unattributed"): (9.0, 900.0, 0.01),
    ("conv", "day", "2026-01-06", "all"): (5.0, 10.0, 0.5),
    ("conv", "day", "2026-01-06", "paid_brand"): (5.0, 10.0, 0.5),
    ("conv", "day", "2026-01-07", "all"): (1.0, 100.0, 0.01),
    ("conv", "day", "2026-01-07", "unattributed"): (1.0, 100.0, 0.01),
    ("conv", "week", W02, "all"): (25.0, 1110.0, 25 / 1110),
    ("conv", "week", W02, "email_news"): (10.0, 100.0, 0.1),
    ("conv", "week", W02, "paid_brand"): (5.0, 10.0, 0.5),
    ("conv", "week", W02, "unattributed"): (10.0, 1000.0, 0.01),
    ("eng", "week", W02, "all"): (515.0, 1110.0, 515 / 1110),
    ("task", "week", W02, "all"): (5.0, 10.0, 0.5),
}


def assert_figures(values: pd.DataFrame, expected: dict[tuple, tuple]) -> None:
    found = figures(values)
    assert set(found) == set(expected)
    for key, (numerator, denominator, value) in expected.items():
        assert found[key] == (numerator, denominator, pytest.approx(value, rel=1e-12)), key


# -- 1. CSV -> GA4 -> CSV -----------------------------------------------------------------


def test_switching_traffic_source_gives_the_values_of_the_chosen_source_alone(
    tmp_path, fake: FakeGa4, ga4_env, new_warehouse
):
    fill_tiny_week(fake)
    project = Project.create(tmp_path / "switch", new_warehouse(), plan_text("csv_exports"))
    assert project.run(MON, WED).success
    assert_figures(project.kpi_values(), CSV_FIGURES)
    # Both declared sources were loaded; only the chosen one counts.
    ga4_raw = project.read("select date, sessions from {raw}.ga4_traffic order by date, sessions")
    assert ga4_raw.values.tolist() == [[MON, 100], [MON, 900], [TUE, 10], [WED, 100]]

    project.write_plan(plan_text("ga4"))
    assert project.run(MON, WED).success
    switched = project.kpi_values()
    # The export's rows stay in raw (its source is still declared): they just do not count.
    csv_raw = project.read("select source_id, date, sessions from {raw}.csv_traffic")
    assert csv_raw.values.tolist() == [["old_export", MON, 5000]]

    ga4_only = Project.create(tmp_path / "ga4_only", new_warehouse(), plan_text(None, csv=False))
    assert ga4_only.run(MON, WED).success
    expected = ga4_only.kpi_values()
    assert_figures(expected, GA4_FIGURES)
    pd.testing.assert_frame_equal(switched, expected)
    # Never CSV + GA4: Monday would be (900 + 19) / (5000 + 1000).
    assert figures(switched)[("conv", "day", "2026-01-05", "all")][:2] == (19.0, 1000.0)

    # Back to the export: nothing to re-load, the SQL models are rebuilt by any run.
    project.write_plan(plan_text("csv_exports"))
    assert project.run(TUE, TUE).success
    back = project.kpi_values()

    csv_only = Project.create(tmp_path / "csv_only", new_warehouse(), plan_text(None, ga4=False))
    assert csv_only.run(MON, WED).success
    expected = csv_only.kpi_values()
    assert_figures(expected, CSV_FIGURES)
    pd.testing.assert_frame_equal(back, expected)


# -- 2. The printed resume command --------------------------------------------------------


def plan_tables(url: str, plan_id: str) -> dict[str, pd.DataFrame]:
    """Every table of a plan's schemas, rows in a stable order."""
    names = read_frame_once(
        url, "select table_schema, table_name from information_schema.tables order by 1, 2"
    )
    tables = {}
    for schema, name in names.itertuples(index=False):
        if not schema.startswith(f"{plan_id}_"):
            continue
        frame = read_frame_once(url, f'select * from "{schema}"."{name}"')
        columns = list(frame.columns)
        tables[f"{schema}.{name}"] = (
            frame.astype(str).sort_values(columns).reset_index(drop=True) if columns else frame
        )
    return tables


def test_the_printed_resume_command_resumes_this_plan_and_no_other(
    tmp_path, fake: FakeGa4, ga4_env, new_warehouse, monkeypatch
):
    url = new_warehouse()
    # Another plan in the same warehouse: the demo plan (id `demo`) and its CSV exports.
    demo_plan = tmp_path / "demo" / "plan_config" / "demo.yaml"
    demo_plan.parent.mkdir(parents=True)
    shutil.copy(DEFAULT_PLAN, demo_plan)  # reads ../data/demo/ relative to itself
    write_demo_exports(tmp_path / "demo" / "data" / "demo", MON, WED, 7)
    assert run_days(demo_plan, MON, WED, warehouse_url=url).success
    demo_before = plan_tables(url, "demo")
    assert "demo_raw.csv_traffic" in demo_before and len(demo_before["demo_raw.csv_traffic"])
    plans_before = read_frame_once(url, "select * from meta.plans where plan_id = 'demo'")

    # This plan sits in a folder whose name needs quoting in a shell; it is run by a
    # relative path, from its folder.
    project = Project.create(tmp_path / "GA4 plans", url, plan_text("ga4"))
    fill_tiny_week(fake)
    fake.fault_on = lambda r: DAILY_QUOTA if day_of(r) >= TUE else None
    monkeypatch.chdir(project.root)
    result = run_days(Path("plan.yaml"), MON, WED, warehouse_url=url)
    monkeypatch.chdir(tmp_path)
    assert not result.success
    message = failure_message(result)
    assert "daily quota" in message and "Loaded 2026-01-05;" in message
    plan_abs = project.plan_path.resolve()
    plan_arg = shlex.quote(str(plan_abs))  # the folder name has a space: quoted
    resume = f"kpi-pipeline run --plan {plan_arg} --from 2026-01-06 --to 2026-01-07"
    assert message.endswith(f"Resume tomorrow with: {resume}")
    raw = project.read("select date, sessions from {raw}.ga4_traffic order by date, sessions")
    assert raw.values.tolist() == [[MON, 100], [MON, 900]]

    # The next day: quota back. The command, as printed, from another folder.
    fake.fault_on = None
    fake.requests.clear()
    printed = message.rsplit("Resume tomorrow with: ", 1)[1]
    argv = shlex.split(printed)
    assert argv[0] == "kpi-pipeline"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "KPI_PLAN")}
    env.update(
        KPI_WAREHOUSE_URL=url,
        KPI_GA4_ENDPOINT=ga4_env,
        TINY_GA4_CREDENTIALS="/secret/place/key.json",
    )
    done = subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", *argv[1:]],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "materialized 2 day(s) 2026-01-06..2026-01-07" in done.stdout
    # Tuesday and Wednesday, and Monday again (the three look-back days).
    assert {(report_of(r), day_of(r)) for r in fake.requests} == {
        (report, day) for report in ("traffic", "events") for day in (MON, TUE, WED)
    }
    raw = project.read("select date, sessions from {raw}.ga4_traffic order by date, sessions")
    assert raw.values.tolist() == [[MON, 100], [MON, 900], [TUE, 10], [WED, 100]]
    assert_figures(project.kpi_values(), GA4_FIGURES)
    # The demo plan's tables and its meta row are exactly as they were.
    demo_after = plan_tables(url, "demo")
    assert demo_after.keys() == demo_before.keys()
    for name, frame in demo_before.items():
        pd.testing.assert_frame_equal(demo_after[name], frame, obj=name)
    plans_after = read_frame_once(url, "select * from meta.plans where plan_id = 'demo'")
    pd.testing.assert_frame_equal(plans_after, plans_before)
    mine = read_frame_once(url, "select plan_path from meta.plans where plan_id = 'plan'")
    assert mine["plan_path"].tolist() == [str(plan_abs)]


# -- 3. An empty GA4 answer where rows existed ---------------------------------------------


def test_an_empty_answer_keeps_the_day_and_fails_until_allowed(
    tmp_path, fake: FakeGa4, ga4_env, new_warehouse
):
    project = Project.create(tmp_path / "shop", new_warehouse(), plan_text("ga4"))
    fill_tiny_week(fake)
    assert project.run(MON, WED).success
    log_before = project.read(
        "select report, row_count, extracted_at from {raw}.ga4_extract_log "
        f"where date = '{TUE}' order by report"
    )
    assert log_before[["report", "row_count"]].values.tolist() == [["events", 2], ["traffic", 1]]

    # GA4 now answers Tuesday with nothing, and revised Monday and Wednesday.
    del fake.rows[("traffic", TUE)]
    del fake.rows[("events", TUE)]
    fake.rows[("traffic", MON)][0]["sessions"] = "200"  # newsletter 100 -> 200
    fake.rows[("traffic", WED)][0]["sessions"] = "300"  # organic 100 -> 300
    result = project.run(MON, WED)
    assert not result.success
    message = failure_message(result)
    plan_abs = project.plan_path.resolve()
    assert message == (
        "source 'site' read no rows for 2026-01-06 from GA4 property 123456 (an empty "
        "answer); kept the 1 row(s) already loaded for those days. The other days were "
        "loaded (2). If data is late or a file moved, deliver it and re-run; to accept the "
        "empty days on purpose: kpi-pipeline run --plan "
        f"{shlex.quote(str(plan_abs))} --from 2026-01-05 --to 2026-01-07 --allow-missing"
    )
    traffic = project.read(
        "select date, source, sessions from {raw}.ga4_traffic order by date, sessions"
    )
    # Monday and Wednesday revised, Tuesday's row kept.
    assert traffic.values.tolist() == [
        [MON, "newsletter", 200],
        [MON, "google", 900],
        [TUE, "google", 10],
        [WED, "google", 300],
    ]
    events = project.read(
        "select date, event_name, event_count from {raw}.ga4_events "
        f"where date = '{TUE}' order by event_name"
    )
    assert events.values.tolist() == [[TUE, "form_start", 6], [TUE, "form_submit", 3]]
    log_after = project.read(
        "select report, row_count, extracted_at from {raw}.ga4_extract_log "
        f"where date = '{TUE}' order by report"
    )
    pd.testing.assert_frame_equal(log_after, log_before)  # Tuesday's transaction rolled back

    result = project.run(MON, WED, tags={"kpi/allow_missing": "1"})
    assert result.success, step_failures(result)
    counts = project.read(
        "select date, count(*) as n from {raw}.ga4_traffic group by date order by date"
    )
    assert counts.values.tolist() == [[MON, 2], [WED, 1]]
    events = project.read(f"select count(*) as n from {{raw}}.ga4_events where date = '{TUE}'")
    assert events["n"].tolist() == [0]
    found = figures(project.kpi_values())
    # Tuesday was pulled and accepted empty: a day GA4 covered with nothing in it. Its
    # 'all' row says so (0 key events over 0 sessions: no rate), and no segment has a row.
    tuesday = {key: found[key] for key in found if key[:3] == ("conv", "day", "2026-01-06")}
    assert list(tuesday) == [("conv", "day", "2026-01-06", "all")]
    numerator, denominator, value = tuesday[("conv", "day", "2026-01-06", "all")]
    assert (numerator, denominator) == (0.0, 0.0) and pd.isna(value)
    status = project.read(
        "select status from {marts}.kpi_scores where kpi_id = 'conv' and grain = 'day' "
        "and period_label = '2026-01-06' and segment = 'all'"
    )
    assert status["status"].tolist() == ["insufficient_data"]
    # Key events 10 + 9 + 1 over sessions 200 + 900 + 300; engaged 60 + 400 + 50.
    assert found[("conv", "week", W02, "all")] == (20.0, 1400.0, pytest.approx(20 / 1400))
    assert found[("eng", "week", W02, "all")] == (510.0, 1400.0, pytest.approx(510 / 1400))
    assert found[("task", "week", W02, "all")] == (2.0, 4.0, 0.5)
    # The week is judged on Monday..Wednesday, the empty Tuesday included: 3 of its 7 days.
    week = project.read(
        "select covered_from, covered_to, days_covered, is_partial from {marts}.kpi_values "
        f"where kpi_id = 'conv' and grain = 'week' and period_label = '{W02}' "
        "and segment = 'all'"
    )
    assert week.values.tolist() == [[MON, WED, 3, True]]
