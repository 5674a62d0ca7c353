"""The real Dagster job with GA4 as the plan's traffic source, into a temporary DuckDB.

The fake serves three days whose KPIs are computed by hand below; each test then scripts
what GA4 does on a later run (revisions, quota, sampling, another time zone).
"""

from __future__ import annotations

import logging

import dagster as dg
import pandas as pd
import pytest
from conftest import MON, THU, TUE, WED, fill_tiny_week
from fake_ga4 import DAILY_QUOTA, day_of, report_of

from kpi_pipeline.cli import main as cli_main
from kpi_pipeline.definitions import build_definitions


def one(frame, **where):
    rows = frame
    for column, wanted in where.items():
        rows = rows[rows[column] == wanted]
    assert len(rows) == 1, f"expected one row for {where}, found {len(rows)}"
    return rows.iloc[0]


def kpi_values(project):
    return project.read("select * from marts.kpi_values")


def materialization(result, key: str) -> dict:
    events = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key
    ]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def test_kpi_values_from_ga4_rows_equal_hand_computed_ones(ga4_project):
    fill_tiny_week(ga4_project.fake)
    result = ga4_project.run(MON, WED)
    assert result.success
    values = kpi_values(ga4_project)
    week = {"grain": "week", "period_label": "2026-W02", "segment": "all"}
    # Key events 10 + 9 + 5 + 1 = 25 over sessions 100 + 900 + 10 + 100 = 1110 ("10.0" and
    # "900.0" parsed exactly). The CSV export (5000 sessions) is declared but not chosen.
    conv = one(values, kpi_id="conv", **week)
    assert (conv.numerator, conv.denominator) == (25.0, 1110.0)
    # Engaged 60 + 400 + 5 + 50 = 515 over 1110.
    eng = one(values, kpi_id="eng", **week)
    assert (eng.numerator, eng.denominator) == (515.0, 1110.0)
    # form_submit 2 + 3 over form_start 4 + 6; page_view counts for nothing.
    task = one(values, kpi_id="task", **week)
    assert (task.numerator, task.denominator, task.value) == (5.0, 10.0, 0.5)
    # Tactics from GA4's session source/medium/campaign: Brand_Search matches brand_*.
    email = one(values, kpi_id="conv", grain="week", segment="email_news")
    assert (email.numerator, email.denominator) == (10.0, 100.0)
    paid = one(values, kpi_id="conv", grain="day", period_label="2026-01-06", segment="paid_brand")
    assert paid.value == 0.5
    assert values["quality_flags"].isna().all()  # clean data carries no flag
    raw = ga4_project.read("select * from raw.ga4_traffic order by date, source")
    assert raw["sessions"].tolist() == [900, 100, 10, 100]
    assert set(raw["property_id"]) == {"123456"}
    traffic_meta = materialization(result, "raw/ga4_traffic")
    assert traffic_meta["rows_in_run"] == 4
    assert traffic_meta["site/tokens_per_day_remaining"] < 200_000


def test_a_revision_updates_raw_and_snapshots_keep_both_versions(ga4_project):
    fake = ga4_project.fake
    fill_tiny_week(fake)
    assert ga4_project.run(MON, TUE).success
    # GA4 reprocesses Tuesday: paid sessions 10 -> 20. Wednesday's run re-pulls the three
    # days before it (lookback_days: 3), Tuesday included.
    fake.rows[("traffic", TUE)][0]["sessions"] = "20"
    assert ga4_project.run(WED, WED).success
    raw = ga4_project.read(f"select sessions from raw.ga4_traffic where date = '{TUE}'")
    assert raw["sessions"].tolist() == [20]
    snapshots = ga4_project.read(
        "select run_id, value from marts.kpi_snapshots where kpi_id = 'conv' and grain = 'day' "
        "and period_label = '2026-01-06' and segment = 'all' order by computed_at"
    )
    assert snapshots["value"].tolist() == [5 / 10, 5 / 20]
    assert snapshots["run_id"].nunique() == 2
    pulled_days = sorted({(report_of(r), day_of(r)) for r in fake.requests[4:]})
    assert pulled_days == [(report, d) for report in ("events", "traffic") for d in (MON, TUE, WED)]


def test_daily_quota_stops_cleanly_keeping_finished_days_whole(ga4_project):
    fake = ga4_project.fake
    fill_tiny_week(fake)
    assert ga4_project.run(MON, WED).success
    snapshots_before = len(ga4_project.read("select * from marts.kpi_snapshots"))
    for day in (TUE, WED):
        fake.rows[("traffic", day)][0]["sessions"] = "500"
    # Wednesday's traffic pages come in, then its events report hits the daily quota.
    fake.fault_on = lambda r: DAILY_QUOTA if (report_of(r), day_of(r)) == ("events", WED) else None
    result = ga4_project.run(MON, WED)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "daily quota" in message
    assert "Loaded 2026-01-05..2026-01-06" in message
    # The command resumes this plan, whatever the folder or the default plan.
    resume = f"kpi-pipeline run --plan {ga4_project.plan_path} --from 2026-01-07 --to 2026-01-07"
    assert message.endswith(f"Resume tomorrow with: {resume}")
    raw = ga4_project.read("select date, sessions from raw.ga4_traffic order by date, sessions")
    # Tuesday was finished: revised. Wednesday's half-read day was rolled back whole.
    assert raw.values.tolist() == [[MON, 100], [MON, 900], [TUE, 500], [WED, 100]]
    log = ga4_project.read(f"select count(*) as n from raw.ga4_extract_log where date = '{WED}'")
    assert log["n"].iloc[0] == 2  # the previous run's traffic and events entries
    # Nothing downstream ran on the partial load.
    assert len(ga4_project.read("select * from marts.kpi_snapshots")) == snapshots_before


def test_sampling_and_thresholding_flags_are_stored_and_reach_kpi_rows(ga4_project):
    fake = ga4_project.fake
    fill_tiny_week(fake)
    fake.sampled[TUE] = (1, 4)
    fake.thresholded.add(TUE)
    result = ga4_project.run(MON, WED)
    assert result.success
    log = ga4_project.read(
        "select date, report, sampled, sampling_rate, subject_to_thresholding, quality_flags "
        "from raw.ga4_extract_log order by date, report"
    )
    tuesday = log[log["date"] == TUE]
    assert tuesday["sampling_rate"].tolist() == [0.25, 0.25]
    assert tuesday["quality_flags"].tolist() == ["sampled,thresholded"] * 2
    assert log[log["date"] != TUE]["quality_flags"].isna().all()
    scores = ga4_project.read(
        "select grain, period_label, segment, quality_flags from marts.kpi_scores "
        "where kpi_id = 'conv' and segment = 'all'"
    )
    flags = dict(zip(scores["period_label"], scores["quality_flags"], strict=True))
    assert flags["2026-01-06"] == "sampled,thresholded"
    assert flags["2026-W02"] == "sampled,thresholded"  # the week contains Tuesday
    assert pd.isna(flags["2026-01-05"])
    assert "sampled" in materialization(result, "raw/ga4_traffic")["quality_flags"]


def test_a_paris_property_under_a_toronto_plan_is_reported(ga4_project):
    fake = ga4_project.fake
    fake.time_zone = "Europe/Paris"
    fill_tiny_week(fake)
    instance = dg.DagsterInstance.ephemeral()
    result = ga4_project.run(MON, MON, instance=instance)
    assert result.success
    meta = materialization(result, "raw/ga4_traffic")
    assert meta["site/property_time_zone"] == "Europe/Paris"
    assert "Europe/Paris" in meta["site/timezone_mismatch"]
    assert "America/Toronto" in meta["site/timezone_mismatch"]
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == logging.WARNING
    ]
    assert any("reports days in Europe/Paris, the plan in America/Toronto" in w for w in warnings)
    # The credentials variable holds "/secret/place/key.json": no log line carries it.
    assert not any("/secret/place" in str(e.user_message) for e in instance.all_logs(result.run_id))
    log = ga4_project.read("select time_zone, timezone_mismatch from raw.ga4_extract_log")
    assert set(log["time_zone"]) == {"Europe/Paris"} and log["timezone_mismatch"].all()
    values = kpi_values(ga4_project)
    assert set(values["quality_flags"]) == {"timezone_mismatch"}


def test_cli_rollback_re_pulls_more_days_and_invalid_argument_reaches_the_user(
    ga4_project, monkeypatch, capsys
):
    fake = ga4_project.fake
    fill_tiny_week(fake)
    monkeypatch.setenv("KPI_WAREHOUSE_URL", ga4_project.warehouse_url)
    plan = str(ga4_project.plan_path)
    # --rollback 3 from Thursday re-pulls Monday to Wednesday as well (lookback would too:
    # set it to 0 to see the rollback alone).
    ga4_project.plan_path.write_text(
        ga4_project.plan_path.read_text().replace("lookback_days: 3", "lookback_days: 0")
    )
    assert cli_main(["run", "--plan", plan, "--date", str(THU)]) == 0
    assert {day_of(r) for r in fake.requests} == {THU}
    fake.requests.clear()
    assert cli_main(["run", "--plan", plan, "--date", str(THU), "--rollback", "3"]) == 0
    assert {day_of(r) for r in fake.requests} == {MON, TUE, WED, THU}
    raw = ga4_project.read("select count(*) as n from raw.ga4_traffic")
    assert raw["n"].iloc[0] == 4
    capsys.readouterr()
    import grpc
    from fake_ga4 import Fault

    fake.faults.append(
        Fault(
            grpc.StatusCode.INVALID_ARGUMENT, "Did you mean keyEvents? Field conversons is invalid"
        )
    )
    assert cli_main(["run", "--plan", plan, "--date", str(THU)]) == 1
    assert "Field conversons is invalid" in capsys.readouterr().err


def test_credentials_path_is_an_env_var_never_a_value(ga4_project):
    defs = build_definitions(ga4_project.plan_path, warehouse_url=ga4_project.warehouse_url)
    resource = defs.resources["ga4_site"]
    assert isinstance(resource.credentials_file, dg.EnvVar)
    assert resource.credentials_file.env_var_name == "TINY_GA4_CREDENTIALS"
    assert "/secret/place" not in repr(resource)


@pytest.mark.parametrize("traffic_source", ["csv_exports", "ga4"])
def test_only_the_chosen_source_feeds_the_kpis(ga4_project, traffic_source):
    fill_tiny_week(ga4_project.fake)
    ga4_project.plan_path.write_text(
        ga4_project.plan_path.read_text().replace(
            "traffic_source: ga4", f"traffic_source: {traffic_source}"
        )
    )
    assert ga4_project.run(MON, MON).success
    day = one(kpi_values(ga4_project), kpi_id="conv", grain="day", segment="all")
    # GA4: 19 / 1000 on Monday; CSV export: 900 / 5000. Never the sum of both.
    expected = {"ga4": (19.0, 1000.0), "csv_exports": (900.0, 5000.0)}[traffic_source]
    assert (day.numerator, day.denominator) == expected
    # Both declared sources are loaded (switching needs no re-run); the plan picks the one
    # that counts: traffic and events requests for Monday either way.
    assert len(ga4_project.fake.requests) == 2


def test_switching_to_csv_exports_counts_the_export_alone_and_keeps_ga4_rows(ga4_project):
    fill_tiny_week(ga4_project.fake)
    assert ga4_project.run(MON, MON).success
    ga4_project.plan_path.write_text(
        ga4_project.plan_path.read_text().replace(
            "traffic_source: ga4", "traffic_source: csv_exports"
        )
    )
    assert ga4_project.run(MON, MON).success
    day = one(kpi_values(ga4_project), kpi_id="conv", grain="day", segment="all")
    assert (day.numerator, day.denominator) == (900.0, 5000.0)  # the export alone
    # GA4's rows stay in raw (nothing deletes what it did not read); the models ignore them.
    assert ga4_project.read("select count(*) as n from raw.ga4_traffic")["n"].iloc[0] == 2
