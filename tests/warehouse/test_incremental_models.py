"""Incremental runs give the same tables, row for row, as a full refresh over the same data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from demo_project import DemoProject, step_failures

from kpi_pipeline.definitions import SQL_MODELS_ROOT
from kpi_pipeline.runs import run_days
from kpi_pipeline.sources.demo_data import write_demo_exports
from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG
from kpi_pipeline.warehouse.sql_models import discover_models

# Fiscal quarters of the demo plan start in April, July, October: 30 September 2026 ends
# fiscal Q2 (and September), and the ISO week of Monday 28 September crosses into Q3.
HISTORY = (dt.date(2026, 8, 24), dt.date(2026, 9, 27))
ACROSS_QUARTER = (dt.date(2026, 9, 28), dt.date(2026, 10, 1))
NEXT_DAY = dt.date(2026, 10, 2)
REVISED_DAY = dt.date(2026, 9, 15)
SCORING_MARTS = ["kpi_scores", "objective_status", "tactic_ranking", "kpi_period_to_date"]


def _tables() -> list[tuple[str, str]]:
    models = [(m.layer, m.name) for m in discover_models(SQL_MODELS_ROOT)]
    built = [(layer, name) for layer, name in models if layer != "staging"]
    return built + [("marts", name) for name in SCORING_MARTS]


def _snapshot(project: DemoProject) -> dict[tuple[str, str], pd.DataFrame]:
    frames = {}
    for schema, name in _tables():
        frame = project.read(f"select * from {schema}.{name}")
        frame = frame.sort_values(list(frame.columns), na_position="first", kind="stable")
        frames[(schema, name)] = frame.reset_index(drop=True)
    return frames


def _build_kind(result) -> dict[str, str]:
    kinds = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            m = event.event_specific_data.materialization
            if "build" in m.metadata:
                kinds[m.asset_key.path[-1]] = str(m.metadata["build"].value)
    return kinds


def test_incremental_runs_match_a_full_refresh(tmp_path, warehouse_url):
    project = DemoProject.create(tmp_path, warehouse_url)
    exports = tmp_path / "data" / "demo"
    write_demo_exports(exports, HISTORY[0], NEXT_DAY, 7)

    first = project.run(*HISTORY)
    assert first.success, step_failures(first)
    assert _build_kind(first)["kpi_values"] == "full"  # an empty warehouse: a full build

    for days in (ACROSS_QUARTER, (NEXT_DAY, NEXT_DAY)):
        result = project.run(*days)
        assert result.success, step_failures(result)
        kinds = _build_kind(result)
        assert kinds["kpi_values"] == "incremental"
        assert kinds["kpi_scores"].startswith("incremental")

    before_revision = project.read(
        "select kpi_id, grain, segment_type, segment, value from marts.kpi_scores "
        f"where period_start <= date '{REVISED_DAY}' and period_end >= date '{REVISED_DAY}' "
        "order by 1, 2, 3, 4"
    )
    # The same days, different numbers: an older day re-run with revised data.
    write_demo_exports(exports, HISTORY[0], NEXT_DAY, 8)
    revised = project.run(REVISED_DAY, REVISED_DAY)
    assert revised.success, step_failures(revised)
    assert _build_kind(revised)["kpi_values"] == "incremental"
    after_revision = project.read(
        "select kpi_id, grain, segment_type, segment, value from marts.kpi_scores "
        f"where period_start <= date '{REVISED_DAY}' and period_end >= date '{REVISED_DAY}' "
        "order by 1, 2, 3, 4"
    )
    assert len(before_revision) > 0
    assert before_revision["value"].tolist() != after_revision["value"].tolist()
    incremental = _snapshot(project)

    full = run_days(
        project.plan_path,
        REVISED_DAY,
        REVISED_DAY,
        warehouse_url=warehouse_url,
        tags={FULL_REFRESH_TAG: "1"},
    )
    assert full.success, step_failures(full)
    assert _build_kind(full)["kpi_values"] == "full"
    refreshed = _snapshot(project)

    assert incremental.keys() == refreshed.keys()
    assert len(refreshed[("marts", "kpi_values")]) > 0
    assert len(refreshed[("marts", "kpi_scores")]) > 0
    for table, frame in incremental.items():
        # Sums may add the same doubles in another order: equal to 1e-12, not to the bit.
        pd.testing.assert_frame_equal(
            frame, refreshed[table], check_exact=False, rtol=1e-12, obj=str(table)
        )
