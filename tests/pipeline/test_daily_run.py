"""The real assets, run by the real job, on a tiny export whose KPIs are computed by hand."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from kpi_pipeline.runs import step_failures

KPI_TABLES = [
    "raw.csv_traffic",
    "raw.csv_events",
    "raw.quarantine",
    "marts.kpi_values",
    "marts.kpi_scores",
]


def _value(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, wanted in where.items():
        mask &= frame[column] == wanted
    rows = frame[mask]
    assert len(rows) == 1, f"expected one row for {where}, found {len(rows)}"
    return rows.iloc[0]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.fixture
def ran(tiny_project):
    result = tiny_project.run()
    assert result.success
    return tiny_project, result


def test_week_value_is_a_ratio_of_sums_not_a_mean_of_daily_ratios(ran):
    project, _ = ran
    values = project.read("select * from marts.kpi_values")
    week = _value(values, kpi_id="conv", grain="week", period_label="2026-W02", segment="all")
    # key events 10 + 9 + 5 + 5 x 1 = 29 over sessions 100 + 900 + 10 + 5 x 100 = 1510.
    # The quarantined row (sessions "abc") counts for nothing.
    assert (week.numerator, week.denominator) == (29.0, 1510.0)
    assert week.value == pytest.approx(29 / 1510, abs=1e-15)
    # The mean of the seven daily rates would be (19/1000 + 5/10 + 5 x 1/100) / 7 = 0.0813.
    assert abs(week.value - (19 / 1000 + 5 / 10 + 5 * 0.01) / 7) > 0.05
    assert not week.is_partial
    assert week.period_start == dt.date(2026, 1, 5) and week.period_end == dt.date(2026, 1, 11)


def test_partial_periods_are_flagged(ran):
    project, _ = ran
    values = project.read(
        "select * from marts.kpi_values where kpi_id = 'conv' and segment = 'all'"
    )
    # A period is partial when the KPI's source covered fewer days than it has; each period
    # is dated by its own covered days (as_of_date = covered_to), not the warehouse's last day.
    # The export has rows on every day 5..12, the days its file spans too.
    # W03 has only Monday 12th covered (1 of 7 days).
    w03 = _value(values, grain="week", period_label="2026-W03")
    assert (w03.numerator, w03.denominator, bool(w03.is_partial)) == (5.0, 50.0, True)
    assert (w03.covered_from, w03.covered_to, w03.days_covered) == (
        dt.date(2026, 1, 12),
        dt.date(2026, 1, 12),
        1,
    )
    assert w03.as_of_date == dt.date(2026, 1, 12)
    # January has days before history starts (5th) and after the 12th: 8 of 31 days covered.
    month = _value(values, grain="month", period_label="2026-01")
    assert (month.numerator, month.denominator, bool(month.is_partial)) == (34.0, 1560.0, True)
    assert (month.covered_from, month.covered_to, month.days_covered) == (
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 12),
        8,
    )
    assert month.as_of_date == dt.date(2026, 1, 12)
    # W02 (Mon 5..Sun 11) is covered whole: complete, as of its own last day, the 11th.
    w02 = _value(values, grain="week", period_label="2026-W02")
    assert (w02.covered_from, w02.covered_to, w02.days_covered) == (
        dt.date(2026, 1, 5),
        dt.date(2026, 1, 11),
        7,
    )
    assert (w02.as_of_date, bool(w02.is_partial)) == (dt.date(2026, 1, 11), False)
    day = _value(values, grain="day", period_label="2026-01-06")
    assert (day.value, bool(day.is_partial), day.as_of_date) == (0.5, False, dt.date(2026, 1, 6))
    # Every period's as_of_date is its last covered day: the days 5..12 themselves.
    assert set(values["as_of_date"]) == {dt.date(2026, 1, d) for d in range(5, 13)}
    assert (values["as_of_date"] == values["covered_to"]).all()


def test_segments_and_tactic_attribution(ran):
    project, _ = ran
    values = project.read(
        "select segment_type, segment, numerator, denominator from marts.kpi_values "
        "where kpi_id = 'conv' and grain = 'week' and period_label = '2026-W02' "
        "and segment_type <> 'all' order by segment_type, segment"
    )
    # Brand_Search matches brand_* case-insensitively; organic traffic matches no tactic.
    assert list(values.itertuples(index=False, name=None)) == [
        ("device", "desktop", 15.0, 110.0),
        ("device", "mobile", 14.0, 1400.0),
        ("tactic", "email_news", 10.0, 100.0),
        ("tactic", "paid_brand", 5.0, 10.0),
        ("tactic", "unattributed", 14.0, 1400.0),
    ]


def test_task_completion_and_volume(ran):
    project, _ = ran
    values = project.read("select * from marts.kpi_values where grain = 'week' and segment = 'all'")
    task = _value(values, kpi_id="task", period_label="2026-W02")
    # submits 2 + 3 + 5 x 1 = 10 over starts 4 + 6 + 5 x 2 = 20 (the bad row is excluded).
    assert (task.numerator, task.denominator, task.value) == (10.0, 20.0, 0.5)
    volume = _value(values, kpi_id="vol", period_label="2026-W02")
    # A volume KPI has no denominator: its value is the summed measure.
    assert volume.value == 10.0 and pd.isna(volume.denominator)


def test_scores_follow_the_path(ran):
    project, _ = ran
    scores = project.read(
        "select * from marts.kpi_scores where kpi_id = 'conv' and grain = 'week' "
        "and period_label = '2026-W02'"
    )
    # Path: 0.01 on 2026-01-01 to 0.03 on 2026-12-31 (364 days). A period is compared with
    # the path's average over its covered days: W02 Mon 5..Sun 11 are offsets 4..10 from
    # 2026-01-01, midpoint 7: 0.01 + 0.02 x 7/364 = 0.010385.
    expected = 0.01 + 0.02 * 7 / 364
    by_segment = {row.segment: row for row in scores.itertuples()}
    assert by_segment["all"].expected == pytest.approx(expected, rel=1e-12)
    assert by_segment["all"].status == "on_track"  # 29/1510 = 0.0192 > 0.010385
    # 10/100 = 0.10; its Wilson 95 % interval [0.0552, 0.1744] clears target 0.03 whole.
    assert by_segment["email_news"].status == "achieved"
    # 14/1400 = 0.0100 is 0.000385 behind; the band is 10 % of 0.010385 = 0.00104.
    assert by_segment["unattributed"].status == "at_risk"
    assert by_segment["paid_brand"].status == "insufficient_data"  # 10 sessions < 50
    partial = project.read(
        "select period_label, expected from marts.kpi_scores where kpi_id = 'conv' "
        "and segment = 'all' and period_label in ('2026-W03', '2026-01') order by period_label"
    )
    by_period = dict(zip(partial.period_label, partial.expected, strict=True))
    # A partial period is judged on its covered days only, not its whole span: W03 on
    # Mon 12th alone (offset 11), not through its end (Sun 18th): 0.01 + 0.02 x 11/364.
    assert by_period["2026-W03"] == pytest.approx(0.01 + 0.02 * 11 / 364, rel=1e-12)
    # January, cut by history's start (5th) and the export's last day (12th): offsets 4..11,
    # midpoint 7.5: 0.01 + 0.02 x 7.5/364 = 0.010412 (not from Jan 1st: offsets 0..11 would
    # give midpoint 5.5).
    assert by_period["2026-01"] == pytest.approx(0.01 + 0.02 * 7.5 / 364, rel=1e-12)


def test_bad_rows_are_quarantined_and_counted(ran):
    project, result = ran
    quarantine = project.read("select * from raw.quarantine")
    assert len(quarantine) == 1
    row = quarantine.iloc[0]
    assert row.file == str(project.export_path.resolve())
    assert (row.line, row.column_name, row.reason) == (7, "sessions", "not a number: 'abc'")
    assert row.partition_date == dt.date(2026, 1, 8)
    materializations = result.asset_materializations_for_node("csv_exports")
    traffic = next(
        m for m in materializations if m.asset_key == dg.AssetKey(["raw", "csv_traffic"])
    )
    assert traffic.metadata["quarantined_rows"].value == 1
    assert traffic.metadata["rows_in_run"].value == 9  # the range; dagster/row_count is per day


def test_rerunning_gives_identical_tables_and_one_more_snapshot_run(ran):
    project, first_result = ran
    before = {table: project.read(f"select * from {table}") for table in KPI_TABLES}
    assert project.run().success
    assert project.run(dt.date(2026, 1, 6), dt.date(2026, 1, 6)).success  # one day again
    for table in KPI_TABLES:
        assert_frame_equal(_sorted(project.read(f"select * from {table}")), _sorted(before[table]))
    runs = project.read("select run_id, count(*) as n from marts.kpi_snapshots group by run_id")
    assert len(runs) == 3 and first_result.run_id in set(runs.run_id)
    assert runs.n.nunique() == 1  # every run snapshots every score row


def test_a_failed_run_leaves_the_warehouse_as_it_was(ran):
    project, _ = ran
    before = {table: project.read(f"select * from {table}") for table in KPI_TABLES}
    text = project.export_path.read_text(encoding="utf-8")
    project.export_path.write_text(text.replace(",key_events,", ",purchases,"), encoding="utf-8")
    failed = project.run()
    assert not failed.success
    message = step_failures(failed)["csv_exports"]
    # The file held the run's days when it last read well: its failure fails the run.
    assert message.startswith(f"{project.export_path.resolve()}:1: the header does not match")
    assert "The file held 2026-01-05..2026-01-12 when it last read well" in message
    assert "missing key_events (one of: key_events, key events" in message
    assert "This run changed nothing" in message
    for table in KPI_TABLES:
        assert_frame_equal(project.read(f"select * from {table}"), before[table])


def test_scoring_metadata_names_the_periods_covered(ran):
    _, result = ran
    scores = next(
        m
        for m in result.asset_materializations_for_node("publish_marts")
        if m.asset_key == dg.AssetKey(["marts", "kpi_scores"])
    )
    metadata = {key: value.value for key, value in scores.metadata.items()}
    # The month row of January spans the 1st to the 31st, beyond the loaded 5th..12th.
    assert metadata["first_period_start"] == "2026-01-01"
    assert metadata["last_period_end"] == "2026-01-31"
    assert metadata["as_of_date"] == "2026-01-12"
    assert metadata["latest_closed_statuses"] == {
        "conv": {"day": "achieved", "week": "on_track"},
        "task": {"week": "on_track"},
        "vol": {"week": "on_track"},
    }


def test_unmapped_traffic_lists_what_no_tactic_claims(ran):
    project, result = ran
    (materialization,) = [
        m
        for m in result.asset_materializations_for_node("publish_marts")
        if m.asset_key == dg.AssetKey(["marts", "unmapped_traffic"])
    ]
    # The asset's metadata shows the list itself, so plan owners see it in the UI.
    preview = materialization.metadata["preview"].value
    assert "| google   | organic  | (not set)  |       1400 |" in preview
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
    # Only google / organic matches no UTM rule: 900 + 5 x 100 sessions and 9 + 5 x 1 key
    # events (bad row excluded); no email was ever sent for it, so the email sums are NULL.
    assert list(unmapped.itertuples(index=False, name=None)) == [
        (
            "google",
            "organic",
            "(not set)",
            1400.0,
            14.0,
            None,
            None,
            None,
            dt.date(2026, 1, 5),
            dt.date(2026, 1, 11),
        )
    ]
