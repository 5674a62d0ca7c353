"""What the data checks cost: the demo run with and without them, in one go.

    .venv/bin/python bench/checks_cost.py                 # DuckDB, 3 runs each
    .venv/bin/python bench/checks_cost.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With a PostgreSQL server, each run gets a database of its own (kpi_bench_...), dropped
after it: nothing the bench did not create is touched.

In a temporary folder it writes the demo exports (2025-06-01..2026-11-25) and two copies
of the demo plan: as shipped (checks on) and with `quality: {enabled: false}` (the same
job without a single check). Each run is `kpi-pipeline run` over the whole range, in a
fresh process and a fresh warehouse, alternating the two so machine noise hits both; the
medians and their ratio are printed as a table, with the number of checks evaluated.
The target: checks add at most 25 % to a demo run. Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST, LAST = "2025-06-01", "2026-11-25"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    cli = str(Path(sys.executable).with_name("kpi-pipeline"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "plan_config").mkdir()
        subprocess.run(
            [cli, "demo-data", "--out", str(folder / "data" / "demo"), "--start", FIRST,
             "--end", LAST],
            check=True, capture_output=True,
        )  # fmt: skip
        with_checks = folder / "plan_config" / "demo.yaml"
        shutil.copy(ROOT / "plan_config" / "demo.yaml", with_checks)
        without = folder / "plan_config" / "demo_unchecked.yaml"
        text = with_checks.read_text(encoding="utf-8").replace("id: demo", "id: unchecked")
        without.write_text(text + "\nquality:\n  enabled: false\n", encoding="utf-8")
        times: dict[str, list[float]] = {"without checks": [], "with checks": []}
        checks_line = ""
        for n in range(args.repeats):
            for label, plan in (("without checks", without), ("with checks", with_checks)):
                url = (
                    _fresh_database(args.postgres_url)
                    if args.postgres_url
                    else f"duckdb:///{folder / f'{label[0:4]}{n}.duckdb'}"
                )
                start = time.perf_counter()
                done = subprocess.run(
                    [cli, "run", "--plan", str(plan), "--from", FIRST, "--to", LAST],
                    capture_output=True, text=True, env={**_env(), "KPI_WAREHOUSE_URL": url},
                )  # fmt: skip
                times[label].append(time.perf_counter() - start)
                if args.postgres_url:
                    _drop_database(args.postgres_url, url)
                if done.returncode != 0:
                    print(done.stderr[-2000:], file=sys.stderr)
                    return 1
                if label == "with checks":
                    checks_line = done.stdout.strip().splitlines()[-1]
        base = statistics.median(times["without checks"])
        checked = statistics.median(times["with checks"])
        engine = "postgresql" if args.postgres_url else "duckdb"
        print(f"Demo run {FIRST}..{LAST} on {engine}, medians of {args.repeats} runs each:\n")
        print("| run | median s | runs (s) |")
        print("| --- | ---: | --- |")
        for label, values in times.items():
            shown = ", ".join(f"{v:.1f}" for v in values)
            print(f"| {label} | {statistics.median(values):.1f} | {shown} |")
        print(f"\nchecks add {checked / base - 1:+.0%} ({checks_line})")
    return 0


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("KPI_PLAN", "DAGSTER_HOME")}


def _fresh_database(server_url: str) -> str:
    """A new, empty database of the bench's own on the server (dropped after its run)."""
    import uuid

    import sqlalchemy as sa

    name = f"kpi_bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, url: str) -> None:
    import sqlalchemy as sa

    name = sa.make_url(url).database
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
    engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
