"""Readers work while another process holds the DuckDB file for writing (a run)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from kpi_pipeline.warehouse.reading import ReadOnlyWarehouse, open_warehouse

PLAN = Path(__file__).resolve().parents[2] / "plan_config" / "demo.yaml"


def hold(path: Path) -> subprocess.Popen:
    """A second process that writes a row (committed, still in the WAL) and keeps the file."""
    script = textwrap.dedent(f"""
        import sys, duckdb
        conn = duckdb.connect({str(path)!r})
        conn.execute("insert into demo_marts.probe values (42)")
        print("ready", flush=True)
        sys.stdin.read()
    """)
    holder = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "ready"
    return holder


def make_warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema demo_marts")
        conn.execute("create table demo_marts.probe (x integer)")
        conn.execute("insert into demo_marts.probe values (1)")


def test_a_reader_reads_a_snapshot_while_a_writer_holds_the_file(tmp_path):
    path = tmp_path / "kpi.duckdb"
    make_warehouse(path)
    holder = hold(path)
    try:
        warehouse = open_warehouse(f"duckdb:///{path}", "demo", read_only=True)
        assert isinstance(warehouse, ReadOnlyWarehouse)
        snapshot_folder = warehouse._cleanup
        try:
            assert warehouse.access.snapshot_of == path
            assert warehouse.access.holder == f"PID {holder.pid}"
            # The writer's committed row (still in its write-ahead log) is in the snapshot.
            frame = warehouse.read_frame("select x from demo_marts.probe order by x")
            assert frame["x"].tolist() == [1, 42]
            assert str(warehouse.engine.url) == f"duckdb:///{path}"  # the real file's URL
        finally:
            warehouse.dispose()
        assert snapshot_folder is not None and not snapshot_folder.exists()
    finally:
        holder.communicate("")


def test_scorecard_and_prune_work_while_a_run_holds_the_file(tmp_path):
    path = tmp_path / "kpi.duckdb"
    make_warehouse(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env["KPI_WAREHOUSE_URL"] = f"duckdb:///{path}"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kpi_pipeline.cli", *args, "--plan", str(PLAN)],
            env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )  # fmt: skip

    holder = hold(path)
    try:
        scorecard = cli("scorecard")
        prune = cli("prune")
    finally:
        holder.communicate("")
    # No scores in this warehouse: the scorecard got past opening the busy file to say so.
    assert "Traceback" not in scorecard.stderr + prune.stderr
    lines = scorecard.stderr.strip().splitlines()
    assert lines[0] == (
        f"note: {path} is being written by another process (PID {holder.pid}): reading a "
        "snapshot of what it had committed; run the command again after the run for the latest"
    )
    assert "no scores yet" in lines[-1]
    # prune finds nothing to delete here, so it only read (the snapshot): no failure.
    assert prune.returncode == 0, prune.stderr
