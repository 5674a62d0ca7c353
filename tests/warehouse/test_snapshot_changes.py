"""Snapshots stored as changes answer exactly what an append-only table would.

A simulated history of many runs (days arriving, recent days revised, an old day revised
late, flags set then cleared, a segment dropped then back) is written run by run; for every
run the view `kpi_snapshots` must equal that run's whole scores, as the append-only table
held them. Existing append-only tables are converted in place without losing an answer.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from kpi_pipeline.checks.results import record_snapshot
from kpi_pipeline.checks.suites import mart_suites
from kpi_pipeline.metrics.score_tables import KPI_SCORE_VERSIONS, KPI_SCORES, KPI_SNAPSHOTS
from kpi_pipeline.metrics.snapshots import (
    SCORE_COLUMNS,
    SCORE_KEYS,
    canonical_scores,
    reported_in,
    score_changes,
    versions_from_history,
)
from kpi_pipeline.warehouse.engine import Warehouse, WarehouseError
from kpi_pipeline.warehouse.snapshots import prepare_snapshots, write_snapshot

FIRST_DAY = dt.date(2026, 3, 2)  # a Monday
RUNS = 24
PLAN_HASH = "hash-1"


def scores_of_run(run: int) -> pd.DataFrame:
    """The whole `kpi_scores` a run computes: days 0..run+2 of two KPIs, by day and by week,
    for the whole site and (but for runs 12-15) one tactic. Why each rule is there:

    - a day's value is revised two runs after it arrived (late data: closed rows change);
    - day 1 is revised once more at run 17 (an old period changes, and its week with it);
    - the newest day carries the flag `late_data`, cleared the next run (flags alone);
    - the current week is partial and grows every run (a partial period changes daily);
    - the tactic segment vanishes at run 12 and returns at run 16 (rows close, then reopen).
    """
    last_day = run + 2
    rows = []
    for kpi_index, kpi_id in enumerate(("signups", "conversion")):
        segment_types = ["all"] if 12 <= run <= 15 else ["all", "tactic"]
        for segment_type in segment_types:
            daily = {}
            for day in range(last_day + 1):
                value = float((day * 7 + kpi_index * 3) % 11)
                if run - day >= 2:
                    value += 0.5
                if day == 1 and run >= 17:
                    value += 5
                if segment_type == "tactic":
                    value /= 2
                daily[day] = value
                rows.append(
                    _row(kpi_id, "day", day, day, value, False, day == last_day, segment_type)
                )
            for week_start in range(0, last_day + 1, 7):
                days = [d for d in daily if week_start <= d < week_start + 7]
                value = sum(daily[d] for d in days)
                partial = len(days) < 7
                rows.append(
                    _row(kpi_id, "week", week_start, max(days), value, partial, False, segment_type)
                )
    frame = pd.DataFrame(rows)
    return frame[SCORE_COLUMNS].sort_values(SCORE_KEYS, ignore_index=True)


def _row(kpi_id, grain, start, as_of, value, partial, late, segment_type) -> dict:
    period_start = FIRST_DAY + dt.timedelta(days=start)
    period_end = period_start + dt.timedelta(days=0 if grain == "day" else 6)
    row = dict.fromkeys(SCORE_COLUMNS)
    row.update(
        kpi_id=kpi_id,
        kpi_label=kpi_id.title(),
        kind="count" if kpi_id == "signups" else "rate",
        direction="increase",
        objective_id="grow",
        objective_title="Grow",
        objective_priority=1,
        grain=grain,
        period_start=period_start,
        period_end=period_end,
        period_label=f"{grain} {period_start}",
        segment_type=segment_type,
        segment="all" if segment_type == "all" else "newsletter",
        numerator=value,
        denominator=1.0,
        value=value,
        days_with_data=(as_of - start) + 1,
        is_partial=partial,
        as_of_date=FIRST_DAY + dt.timedelta(days=as_of),
        quality_flags="late_data" if late else None,
        expected=5.0,
        target=8.0,
        status="on_track" if value >= 5 else "behind",
        ci_low=value - 1,
        ci_high=value + 1,
    )
    return row


def history() -> list[tuple[int, pd.DataFrame]]:
    return [(run, scores_of_run(run)) for run in range(1, RUNS + 1)]


def _same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal as sets of score rows (order and dtypes as read aside)."""
    assert_frame_equal(
        canonical_scores(actual).sort_values(SCORE_KEYS, ignore_index=True),
        canonical_scores(expected).sort_values(SCORE_KEYS, ignore_index=True),
    )


# -- the pure change detection ---------------------------------------------------------


def test_unchanged_scores_open_and_close_nothing():
    scores = scores_of_run(5)
    # Read back from a warehouse, dates come as timestamps and flags as objects: still equal.
    as_read = scores.assign(period_start=pd.to_datetime(scores["period_start"]))
    changes = score_changes(as_read, scores)
    assert (len(changes.opened), len(changes.closed)) == (0, 0)


@pytest.mark.parametrize(
    ("column", "new_value"),
    [
        ("value", 99.0),
        ("ci_high", 99.0),  # the interval alone
        ("status", "achieved"),
        ("quality_flags", "late_data"),  # null -> a flag
        ("hold_reason", "launch week"),  # null -> text
        ("is_partial", True),
    ],
)
def test_a_change_in_any_score_column_replaces_that_row_only(column, new_value):
    before = scores_of_run(5)
    after = before.copy()
    target = (after["kpi_id"] == "signups") & (after["grain"] == "week") & ~after["is_partial"]
    target &= after["segment_type"] == "all"
    assert target.sum() == 1
    after.loc[target, column] = new_value
    changes = score_changes(before, after)
    assert changes.opened.index.tolist() == after.index[target].tolist()
    assert changes.closed.index.tolist() == before.index[target].tolist()


def test_rows_that_vanish_are_closed_and_new_rows_opened():
    before, after = scores_of_run(11), scores_of_run(12)  # run 12 drops the tactic segment
    changes = score_changes(before, after)
    closed = changes.closed
    # Every tactic row closes; of the whole-site rows, those revised or grown change:
    # days 9 (revised, 2 runs old), 13 (flag cleared), 14 (new), and week 7-13 / 14-.
    assert (closed["segment_type"] == "tactic").sum() == len(
        before[before["segment_type"] == "tactic"]
    )
    opened_days = changes.opened.query("grain == 'day'")["period_start"].tolist()
    assert opened_days == [FIRST_DAY + dt.timedelta(days=d) for d in (10, 13, 14)] * 2
    assert set(changes.opened["segment_type"]) == {"all"}


def test_versions_answer_every_run_as_the_whole_scores_did():
    runs = history()
    versions = versions_from_history(runs)
    for run, scores in runs:
        _same_rows(reported_in(versions, run), scores)
    # As many versions as rows a run holds that the run before did not hold identically
    # (counted here by matching whole rows, not by keys).
    new_rows = [
        len(scores.merge(before, how="left", indicator=True).query("_merge == 'left_only'"))
        for (_, before), (_, scores) in zip(
            [(0, scores_of_run(0).iloc[:0]), *runs[:-1]], runs, strict=True
        )
    ]
    assert len(versions) == sum(new_rows) == 440
    # Run 2 over run 1: day 4 arrives, day 0 is revised, day 3 loses its flag, and their
    # week 0 changes, for 2 KPIs x 2 segments: 4 x 4. Run 12 drops the tactic and changes
    # days 14 (new), 10 (revised), 13 (unflagged), weeks 7-13 and 14- (new): 5 x 2 KPIs.
    assert (new_rows[1], new_rows[11]) == (16, 10)
    # 1,584 rows appended run after run; 440 stored.
    assert sum(len(scores) for _, scores in runs) == 1584


# -- the warehouse, on each engine ------------------------------------------------------


def _write(wh: Warehouse, run: int, scores: pd.DataFrame):
    """Run `run` (id `run-NN`) snapshots `scores`, with its ledger row, as the asset does."""
    computed_at = dt.datetime(2026, 4, 1, tzinfo=dt.UTC) + dt.timedelta(days=run)
    with wh.transaction() as conn:
        # What the publishing step leaves in kpi_scores, which the snapshot reads.
        wh.ensure_table(KPI_SCORES, conn)
        wh.replace_all(conn, KPI_SCORES, scores)
        written = write_snapshot(wh, conn, f"run-{run:02d}", computed_at, PLAN_HASH)
        record_snapshot(
            wh, conn, f"run-{run:02d}", written.reported, written.value_sum, computed_at
        )
    assert written.reported == len(scores)
    return written


def test_the_view_answers_every_run_as_an_append_only_table_would(warehouse_url):
    wh = Warehouse.from_url(warehouse_url, "acme")
    try:
        prepare_snapshots(wh)
        opened = {}
        for run, scores in history():
            opened[run] = _write(wh, run, scores).opened
        for run, scores in history():
            reported = wh.read_frame(
                "select * from acme_marts.kpi_snapshots where run_id = :run_id",
                {"run_id": f"run-{run:02d}"},
            )
            assert list(reported.columns) == KPI_SNAPSHOTS.column_names
            assert set(reported["plan_hash"]) == {PLAN_HASH}
            assert len(set(reported["computed_at"])) == 1
            _same_rows(reported, scores)
        stored = wh.read_frame("select count(*) as n from acme_marts.kpi_score_versions")["n"][0]
        assert stored == sum(opened.values()) == len(versions_from_history(history()))
        # Run 2 over run 1: new day 3 (with flag), day 0 revised, day 2 unflagged, and the
        # one week they all fall in, for 2 KPIs x 2 segments: (3 + 1) x 4.
        assert opened[2] == 16
    finally:
        wh.dispose()


def test_a_run_whose_scores_did_not_change_stores_no_row(warehouse_url):
    wh = Warehouse.from_url(warehouse_url, "acme")
    try:
        prepare_snapshots(wh)
        scores = scores_of_run(6)
        first = _write(wh, 1, scores)
        again = _write(wh, 2, scores)
        assert (first.opened, first.reported) == (len(scores), len(scores))
        assert (again.opened, again.closed, again.reported) == (0, 0, len(scores))
        counts = wh.read_frame(
            "select run_id, count(*) as n from acme_marts.kpi_snapshots group by run_id "
            "order by run_id"
        )
        assert counts.to_dict("records") == [
            {"run_id": "run-01", "n": len(scores)},
            {"run_id": "run-02", "n": len(scores)},
        ]
        runs = wh.read_frame(
            "select run_seq, rows_reported, rows_opened, rows_closed "
            "from acme_marts.kpi_snapshot_runs order by run_seq"
        )
        assert runs.values.tolist() == [[1, len(scores), len(scores), 0], [2, len(scores), 0, 0]]
    finally:
        wh.dispose()


def test_a_retried_step_replaces_its_own_changes_and_an_old_run_is_refused(warehouse_url):
    wh = Warehouse.from_url(warehouse_url, "acme")
    try:
        prepare_snapshots(wh)
        _write(wh, 1, scores_of_run(1))
        _write(wh, 2, scores_of_run(2))
        retried = _write(wh, 2, scores_of_run(2))  # the same run id again
        assert retried.run_seq == 2 and retried.opened == 16
        total = wh.read_frame("select count(*) as n from acme_marts.kpi_score_versions")["n"][0]
        assert total == len(versions_from_history(history()[:2]))
        with pytest.raises(WarehouseError, match="run run-01 recorded its snapshot before"):
            _write(wh, 1, scores_of_run(1))
    finally:
        wh.dispose()


def test_the_append_only_check_sees_a_changed_version(warehouse_url):
    (suite,) = [s for s in mart_suites() if s.asset == ("marts", "kpi_snapshots")]
    wh = Warehouse.from_url(warehouse_url, "acme")
    try:
        prepare_snapshots(wh)
        for run, scores in history()[:6]:
            _write(wh, run, scores)

        def unchanged() -> dict[str, bool]:
            ledger = suite.derive(wh.read_frame(wh.plan_sql(suite.query)))
            return dict(zip(ledger["run_id"], ledger["unchanged"], strict=True))

        assert unchanged() == {f"run-{r:02d}": True for r in range(1, 7)}
        # Someone edits a closed version: day 0 as run 1 reported it (revised at run 2).
        with wh.transaction() as conn:
            conn.exec_driver_sql(
                "update acme_marts.kpi_score_versions set value = value + 1 "
                "where valid_from_run = 1 and valid_to_run = 2 and grain = 'day' "
                f"and period_start = '{FIRST_DAY}' and kpi_id = 'signups' "
                "and segment_type = 'all'"
            )
        assert unchanged() == {f"run-{r:02d}": r != 1 for r in range(1, 7)}
    finally:
        wh.dispose()


def test_an_append_only_table_is_converted_in_place_keeping_every_answer(warehouse_url):
    wh = Warehouse.from_url(warehouse_url, "acme")
    try:
        # The former shape: every run's whole scores appended to a table.
        wh.ensure_table(KPI_SNAPSHOTS)
        expected = {}
        for run, scores in history():
            computed_at = dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC) + dt.timedelta(days=run)
            rows = scores.assign(
                run_id=f"old-{run:02d}", computed_at=computed_at, plan_hash=f"hash-{run // 10}"
            )
            expected[f"old-{run:02d}"] = rows
            with wh.transaction() as conn:
                wh.bulk_insert(conn, KPI_SNAPSHOTS, rows)
        appended = sum(len(rows) for rows in expected.values())

        prepare_snapshots(wh)

        with wh.engine.connect() as conn:
            assert wh.relation_kind(conn, "acme_marts", "kpi_snapshots") == "view"
        for run_id, rows in expected.items():
            reported = wh.read_frame(
                "select * from acme_marts.kpi_snapshots where run_id = :run_id",
                {"run_id": run_id},
            )
            _same_rows(reported, rows)
            assert set(reported["plan_hash"]) == set(rows["plan_hash"])
            assert pd.to_datetime(reported["computed_at"], utc=True).tolist() == [
                pd.Timestamp(rows["computed_at"].iloc[0])
            ] * len(rows)
        stored = wh.read_frame("select count(*) as n from acme_marts.kpi_score_versions")["n"][0]
        assert (stored, appended) == (440, 1584)
        # The next run goes on from the converted history.
        written = _write(wh, RUNS + 1, scores_of_run(RUNS))
        assert (written.run_seq, written.opened) == (RUNS + 1, 0)
    finally:
        wh.dispose()


def test_scores_and_versions_share_the_declared_score_columns():
    # The view's columns are the former table's: readers' queries keep working.
    assert KPI_SNAPSHOTS.column_names == ["run_id", "computed_at", "plan_hash", *SCORE_COLUMNS]
    assert KPI_SCORE_VERSIONS.column_names[3:] == KPI_SCORES.column_names


def test_a_daily_run_whose_data_did_not_change_stores_no_snapshot_row(warehouse_url, tmp_path):
    # Imported here: it loads the whole Dagster definitions, which only this test needs.
    from demo_project import LAST_DAY, DemoProject, step_failures

    project = DemoProject.create(tmp_path, warehouse_url)
    first = project.run()
    assert first.success, step_failures(first)
    again = project.run(LAST_DAY, LAST_DAY)  # the last day again: same files, same scores
    assert again.success, step_failures(again)

    runs = project.read(
        "select run_id, rows_reported, rows_opened, rows_closed from marts.kpi_snapshot_runs "
        "order by run_seq"
    )
    reported = int(runs["rows_reported"].iloc[0])
    assert runs.values.tolist() == [
        [first.run_id, reported, reported, 0],
        [again.run_id, reported, 0, 0],
    ]
    materialized = [
        event.materialization.metadata["dagster/row_count"].value
        for event in again.get_asset_materialization_events()
        if event.asset_key.path == ["marts", "kpi_snapshots"]
    ]
    assert materialized == [0]
    # Both runs report the same rows through the view.
    answers = [
        project.read(f"select * from marts.kpi_snapshots where run_id = '{run.run_id}'")
        for run in (first, again)
    ]
    _same_rows(answers[1], answers[0])
    assert len(answers[0]) == reported
