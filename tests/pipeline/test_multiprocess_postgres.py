"""On PostgreSQL the daily job runs under Dagster's multiprocess executor (the sources in
parallel) and writes exactly the tables an in-process run writes; DuckDB stays in process."""

from __future__ import annotations

import dataclasses
import itertools

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
from kpi_pipeline.runs import daily_job_from_environment

# Tables of every layer; run ids and load times differ between any two runs.
COMPARED = [
    "raw.csv_traffic",
    "raw.csv_events",
    "raw.quarantine",
    "marts.kpi_values",
    "marts.kpi_scores",
    "marts.objective_status",
    "marts.tactic_ranking",
]
SOURCE_STEPS = ("csv_exports", "ga4_reports", "email_platforms", "session_csvs")
PER_RUN = ("run_id", "loaded_at", "scored_at", "computed_at", "recorded_at", "ingested_at")


def _step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) timestamps, from the run's stored events."""
    started: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            windows[event.step_key] = (started[event.step_key], record.timestamp)
    return windows


def _table(project, name: str) -> pd.DataFrame:
    frame = project.read(f"select * from {name}")
    frame = frame.drop(columns=[c for c in frame.columns if c in PER_RUN])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_executor_follows_the_warehouse(tiny_project):
    duckdb = build_definitions(tiny_project.plan_path, tiny_project.warehouse_url)
    assert duckdb.resolve_job_def(DAILY_JOB_NAME).executor_def.name == "in_process"
    postgres = build_definitions(tiny_project.plan_path, "postgresql+psycopg://u@127.0.0.1/db")
    executor = postgres.resolve_job_def(DAILY_JOB_NAME).executor_def
    assert executor.name == "multiprocess"


def test_multiprocess_run_writes_the_tables_an_in_process_run_writes(
    tiny_project, postgres_url, postgres_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("KPI_REPORT_DIR", str(tmp_path / "reports"))
    in_process = dataclasses.replace(tiny_project, warehouse_url=postgres_url)
    assert in_process.run().success

    parallel = dataclasses.replace(
        tiny_project,
        warehouse_url=postgres_server.url_for(postgres_server.create_database()),
    )
    monkeypatch.setenv("KPI_PLAN", str(tiny_project.plan_path))
    monkeypatch.setenv("KPI_WAREHOUSE_URL", parallel.warehouse_url)
    # The multiprocess executor needs a persistent instance (a DAGSTER_HOME of its own).
    (tmp_path / "dagster_home").mkdir()
    with (
        dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance,
        dg.execute_job(
            dg.reconstructable(daily_job_from_environment),
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: "2026-01-05",
                ASSET_PARTITION_RANGE_END_TAG: "2026-01-12",
            },
        ) as result,
    ):
        failures = {
            e.step_key: e.step_failure_data.error.to_string()
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data
        }
        assert result.success, failures
        starts = result.filter_events(lambda e: e.event_type_value == "STEP_START")
        pids = {event.pid for event in starts}
        windows = _step_windows(instance, result.run_id)
    # Every step ran in a process of its own, and the sources' steps overlapped in time.
    assert len(pids) == len(starts) > 1
    sources = sorted(windows[step] for step in SOURCE_STEPS)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(sources)), sources

    for name in COMPARED:
        expected, got = _table(in_process, name), _table(parallel, name)
        assert len(expected) > 0 or name == "raw.quarantine", name
        pd.testing.assert_frame_equal(got, expected, obj=name)
