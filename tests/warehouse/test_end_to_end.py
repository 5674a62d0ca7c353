"""The demo pipeline over two weeks gives the same tables on DuckDB and on PostgreSQL.

The SQL models are written once and transpiled; the loads take different bulk paths (Arrow
scan, COPY). Equal rows and values to 1e-12 show that neither the dialect nor the load path
changes a number.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from demo_project import DemoProject, step_failures

# Every table a reader relies on, with the columns that identify a row.
ROW_KEY = ["source_id", "date", "source", "medium", "campaign", "landing_page", "device"]
TABLES = {
    "raw.csv_traffic": ROW_KEY,
    "raw.csv_events": [*ROW_KEY, "event_name"],
    "raw.quarantine": ["source_id", "file", "line"],
    "plan.calendar": ["date", "grain"],
    "marts.kpi_values": ["kpi_id", "grain", "period_start", "segment_type", "segment"],
    "marts.kpi_scores": ["kpi_id", "grain", "period_start", "segment_type", "segment"],
    "marts.kpi_snapshots": ["kpi_id", "grain", "period_start", "segment_type", "segment"],
}  # fmt: skip
# Differ by design between two runs: which run, when, and (in files) where the tmp folder is.
PER_RUN_COLUMNS = {"run_id", "computed_at", "file"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, postgres_server) -> dict[str, dict[str, pd.DataFrame]]:
    """Both engines' tables after the same two-week run of the demo plan."""
    database = postgres_server.create_database()
    urls = {
        "duckdb": f"duckdb:///{tmp_path_factory.mktemp('duck') / 'kpi.duckdb'}",
        "postgresql": postgres_server.url_for(database),
    }
    tables: dict[str, dict[str, pd.DataFrame]] = {}
    for engine, url in urls.items():
        project = DemoProject.create(tmp_path_factory.mktemp(engine), url)
        result = project.run()
        assert result.success, step_failures(result)
        tables[engine] = {name: project.read(f"select * from {name}") for name in TABLES}
    postgres_server.drop_database(database)
    return tables


def _normalised(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in frame.columns if c in PER_RUN_COLUMNS])
    for column in frame.columns:
        if ("date" in column or column.startswith("period_")) and column != "period_label":
            frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
    frame = frame[sorted(frame.columns)]
    return frame.sort_values([k for k in keys if k in frame.columns]).reset_index(drop=True)


@pytest.mark.parametrize("table", list(TABLES))
def test_duckdb_and_postgres_agree(runs, table):
    duck = _normalised(runs["duckdb"][table], TABLES[table])
    pg = _normalised(runs["postgresql"][table], TABLES[table])
    assert list(duck.columns) == list(pg.columns)
    assert len(duck) == len(pg) > 0
    for column in duck.columns:
        left, right = duck[column].tolist(), pg[column].tolist()
        for row, (a, b) in enumerate(zip(left, right, strict=True)):
            if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
                assert pd.isna(a) and pd.isna(b), f"{table}.{column} row {row}: {a!r} != {b!r}"
            elif isinstance(a, float) or isinstance(b, float):
                assert abs(float(a) - float(b)) <= 1e-12, f"{table}.{column} row {row}: {a} {b}"
            else:
                assert a == b, f"{table}.{column} row {row}: {a!r} != {b!r}"


def test_the_two_weeks_were_scored(runs):
    # Not an empty agreement: both engines hold two full ISO weeks of conversion-rate scores.
    for engine in ("duckdb", "postgresql"):
        scores = runs[engine]["marts.kpi_scores"]
        weeks = scores[
            (scores["kpi_id"] == "online_conversion_rate")
            & (scores["grain"] == "week")
            & (scores["segment_type"] == "all")
        ]
        assert sorted(weeks["period_label"]) == ["2026-W32", "2026-W33"], engine
        assert not weeks["is_partial"].astype(bool).any(), engine
        assert runs[engine]["raw.csv_traffic"]["date"].nunique() == 14, engine
        # The demo's row of 9 August with a missing field, quarantined on both.
        quarantine = runs[engine]["raw.quarantine"]
        assert len(quarantine) == 1, engine
        assert quarantine["raw_text"].iloc[0].startswith("2026-08-09,"), engine
