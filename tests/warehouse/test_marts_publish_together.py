"""The marts a run builds become visible together: all from one run, or all from the last.

`publish_marts` builds `kpi_values`, `unmapped_traffic`, `kpi_scores` and the roll-ups in
one transaction. These tests stop it half-way (a roll-up that raises) and look from another
connection in the middle of it, on DuckDB and on PostgreSQL, through the real daily job.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from demo_project import FIRST_DAY, LAST_DAY, DemoProject, step_failures

from kpi_pipeline.defs import scoring_assets
from kpi_pipeline.runs import run_days
from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG

MARTS = {
    "kpi_values": ["kpi_id", "grain", "period_start", "segment_type", "segment"],
    "unmapped_traffic": ["source", "medium", "campaign"],
    "kpi_scores": ["kpi_id", "grain", "period_start", "segment_type", "segment"],
    "objective_status": ["objective_id", "grain"],
    "tactic_ranking": ["kpi_id", "grain", "tactic"],
    "kpi_period_to_date": ["kpi_id", "grain", "segment_type", "segment", "period_start"],
}
# The first run stops three days short; the second brings those days in (and so changes
# the week and month they fall in).
EARLIER_LAST = LAST_DAY - dt.timedelta(days=3)
LATER_FIRST = EARLIER_LAST + dt.timedelta(days=1)


def read_marts(project: DemoProject) -> dict[str, pd.DataFrame]:
    return {
        table: project.read(f"select * from marts.{table}")
        .sort_values(keys)
        .reset_index(drop=True)
        for table, keys in MARTS.items()
    }


def totals(project: DemoProject) -> tuple:
    """What a reader sees of the two marts that must agree: rows and sums of each."""
    frame = project.read(
        "select (select count(*) from marts.kpi_values) as value_rows, "
        "(select sum(numerator) from marts.kpi_values) as numerators, "
        "(select count(*) from marts.kpi_scores) as score_rows, "
        "(select sum(numerator) from marts.kpi_scores) as scored_numerators"
    )
    return tuple(frame.iloc[0].tolist())


def test_a_run_failing_while_publishing_leaves_every_mart_as_it_was(
    warehouse_url, tmp_path, monkeypatch
):
    project = DemoProject.create(tmp_path, warehouse_url)
    first = project.run(FIRST_DAY, EARLIER_LAST)
    assert first.success, step_failures(first)
    before = read_marts(project)

    def broken(*args, **kwargs):
        raise RuntimeError("tactic ranking broke half-way through publishing")

    monkeypatch.setattr(scoring_assets, "rank_tactics", broken)
    failed = project.run(LATER_FIRST, LAST_DAY)

    assert not failed.success
    assert list(step_failures(failed)) == ["publish_marts"]
    after = read_marts(project)
    for table in MARTS:
        # kpi_values and kpi_scores were already rebuilt inside the transaction: rolled back.
        pd.testing.assert_frame_equal(after[table], before[table], obj=table)

    monkeypatch.undo()
    # The next run redoes what the failed one did not publish: the same marts as a full
    # rebuild of every day.
    recovered = project.run(LATER_FIRST, LAST_DAY)
    assert recovered.success, step_failures(recovered)
    published = read_marts(project)
    assert len(published["kpi_values"]) > len(before["kpi_values"])
    refreshed = run_days(
        project.plan_path,
        FIRST_DAY,
        LAST_DAY,
        warehouse_url=warehouse_url,
        tags={FULL_REFRESH_TAG: "1"},
    )
    assert refreshed.success, step_failures(refreshed)
    for table, frame in read_marts(project).items():
        pd.testing.assert_frame_equal(published[table], frame, obj=table)


def test_readers_see_the_previous_run_until_the_publish_commits(
    warehouse_url, tmp_path, monkeypatch
):
    project = DemoProject.create(tmp_path, warehouse_url)
    first = project.run(FIRST_DAY, EARLIER_LAST)
    assert first.success, step_failures(first)
    before = totals(project)
    seen_mid_publish = []
    rank_tactics = scoring_assets.rank_tactics

    def look_then_rank(*args, **kwargs):
        # By now kpi_values and kpi_scores are rebuilt, uncommitted: a reader's view.
        seen_mid_publish.append(totals(project))
        return rank_tactics(*args, **kwargs)

    monkeypatch.setattr(scoring_assets, "rank_tactics", look_then_rank)
    second = project.run(LATER_FIRST, LAST_DAY)

    assert second.success, step_failures(second)
    assert seen_mid_publish == [before]
    after = totals(project)
    assert after[0] > before[0] and after[1] > before[1]  # more periods, more conversions
    assert after[2] == after[0]  # one score per value, both from this run
