"""Bulk-load benchmark: our load path against the naive one and each engine's own floor.

    .venv/bin/python bench/load.py                       # 1M and 5M rows, both engines
    .venv/bin/python bench/load.py --rows 200000 --engines duckdb

For each size it generates synthetic GA4-like rows (date, source, medium, campaign, landing
page, device, sessions, engaged sessions, key events, task events), seeded, and measures in
one run, each in a fresh process and a fresh table:

- ours: `Warehouse.replace_rows` in one transaction (DuckDB: registered Arrow chunks;
  PostgreSQL: psycopg 3 COPY fed chunk by chunk), from frames already in memory, with the
  process's peak RSS (which includes those source frames);
- naive: `DataFrame.to_sql` on a sample (`--sample`, default 200,000 rows);
- floor: the engine's own bulk path on the same data written as CSV: DuckDB `read_csv`
  into a table, `psql \\copy` into PostgreSQL.

PostgreSQL: `--postgres-url` (default `KPI_TEST_POSTGRES_URL` or the local server); a
scratch database `kpi_bench_<pid>` is created and dropped. Not a test: numbers go in the
README's performance section.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from kpi_pipeline.lib.tables import TableSpec

COLUMNS = (
    ("date", "date"),
    ("source", "text"),
    ("medium", "text"),
    ("campaign", "text"),
    ("landing_page", "text"),
    ("device", "text"),
    ("sessions", "bigint"),
    ("engaged_sessions", "bigint"),
    ("key_events", "double"),
    ("task_events", "bigint"),
)
SQL_TYPES = {"date": "date", "text": "text", "bigint": "bigint", "double": "double precision"}
CHUNK = 200_000
SEED = 11

_SOURCES = np.array(["google", "(direct)", "newsletter", "facebook", "bing", "youtube", "t.co"])
_MEDIUMS = np.array(["organic", "cpc", "email", "(none)", "social", "referral", "video"])
_CAMPAIGNS = np.array(["(not set)", *[f"campaign_{i:03d}" for i in range(60)]])
_PAGES = np.array(["/", *[f"/products/item-{i:04d}" for i in range(800)], "/blog/how-to-pack"])
_DEVICES = np.array(["desktop", "mobile", "tablet"])


def spec(name: str) -> TableSpec:
    return TableSpec("bench", name, COLUMNS, grain="one row per synthetic GA4 row")  # type: ignore[arg-type]


def chunk(index: int, rows: int) -> pd.DataFrame:
    """Rows [index*CHUNK, index*CHUNK + rows) of the synthetic data; same seed, same rows."""
    rng = np.random.default_rng([SEED, index])
    sessions = rng.poisson(40, rows) + 1
    engaged = rng.binomial(sessions, 0.55)
    days = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D")
    return pd.DataFrame(
        {
            "date": days.astype("datetime64[s]"),
            "source": _SOURCES[rng.integers(0, len(_SOURCES), rows)],
            "medium": _MEDIUMS[rng.integers(0, len(_MEDIUMS), rows)],
            "campaign": _CAMPAIGNS[rng.integers(0, len(_CAMPAIGNS), rows)],
            "landing_page": _PAGES[rng.integers(0, len(_PAGES), rows)],
            "device": _DEVICES[rng.integers(0, len(_DEVICES), rows)],
            "sessions": sessions.astype("int64"),
            "engaged_sessions": engaged.astype("int64"),
            "key_events": rng.binomial(sessions, 0.03).astype("float64"),
            "task_events": rng.binomial(sessions, 0.01).astype("int64"),
        }
    )


def chunks(total: int) -> list[pd.DataFrame]:
    return [chunk(i, min(CHUNK, total - i * CHUNK)) for i in range((total + CHUNK - 1) // CHUNK)]


def write_csv(path: Path, total: int) -> None:
    with pa_csv.CSVWriter(str(path), pa.Schema.from_pandas(chunk(0, 1), preserve_index=False)) as w:
        for frame in chunks(total):
            w.write_table(pa.Table.from_pandas(frame, preserve_index=False))


def create_table_sql(name: str) -> str:
    columns = ", ".join(f"{c} {SQL_TYPES[t]}" for c, t in COLUMNS)
    return f"create schema if not exists bench; drop table if exists bench.{name}; " + (
        f"create table bench.{name} ({columns})"
    )


# -- workers (each in its own process, so peak RSS is its own) --------------------------


def worker(method: str, url: str, rows: int, csv: str) -> dict:
    import sqlalchemy as sa

    from kpi_pipeline.warehouse.engine import Warehouse
    from kpi_pipeline.warehouse.partitions import Everything

    wh = Warehouse.from_url(url)
    name = f"rows_{method}"
    with wh.transaction() as conn:
        for statement in create_table_sql(name).split("; "):
            conn.exec_driver_sql(statement)
    held = 0
    if method == "ours":
        frames = chunks(rows)
        held = _current_rss()  # the source frames, in memory before the load starts
        start = time.perf_counter()
        with wh.transaction() as conn:
            loaded = wh.replace_rows(conn, spec(name), frames, Everything())
        elapsed = time.perf_counter() - start
    elif method == "to_sql":
        frame = chunk(0, rows)
        start = time.perf_counter()
        frame.to_sql(name, wh.engine, schema="bench", if_exists="append", index=False)
        elapsed = time.perf_counter() - start
        loaded = rows
    elif method == "read_csv":
        types = ", ".join(f"'{c}': '{SQL_TYPES[t].upper()}'" for c, t in COLUMNS)
        start = time.perf_counter()
        with wh.transaction() as conn:
            conn.exec_driver_sql(
                f"insert into bench.{name} select * from "
                f"read_csv('{csv}', header = true, columns = {{{types}}})"
            )
        elapsed = time.perf_counter() - start
        loaded = rows
    else:
        raise SystemExit(f"unknown method {method}")
    with wh.engine.connect() as conn:
        count = conn.execute(sa.text(f"select count(*) from bench.{name}")).scalar_one()
    wh.dispose()
    assert count == loaded == rows, (count, loaded, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rows": rows, "seconds": elapsed, "peak_rss": peak, "rss_before": held}


def _current_rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def run_worker(method: str, url: str, rows: int, csv: Path) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            method,
            "--url",
            url,
            "--n",
            str(rows),
            "--csv",
            str(csv),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def psql_copy(url: str, rows: int, csv: Path) -> dict:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    base = ["psql", "-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username]
    base += ["-d", u.database, "-v", "ON_ERROR_STOP=1", "-q"]
    setup = f"set client_min_messages = warning; {create_table_sql('rows_psql_copy')}"
    subprocess.run([*base, "-c", setup], check=True, env=env)
    columns = ", ".join(c for c, _ in COLUMNS)
    copy = f"\\copy bench.rows_psql_copy ({columns}) from '{csv}' with (format csv, header true)"
    start = time.perf_counter()
    subprocess.run([*base, "-c", copy], check=True, env=env)
    elapsed = time.perf_counter() - start
    return {"rows": rows, "seconds": elapsed, "peak_rss": None, "rss_before": None}


# -- driver -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgresql"])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("KPI_TEST_POSTGRES_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--worker")
    parser.add_argument("--url")
    parser.add_argument("--n", type=int)
    parser.add_argument("--csv", default="")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.n, args.csv)))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="kpi_bench_"))
    results: list[tuple[str, str, dict]] = []
    pg_admin = pg_url = None
    try:
        if "postgresql" in args.engines:
            import psycopg
            from sqlalchemy.engine import make_url

            pg_admin = make_url(args.postgres_url)
            name = f"kpi_bench_{os.getpid()}"
            with psycopg.connect(
                host=pg_admin.host, port=pg_admin.port or 5432, user=pg_admin.username,
                password=pg_admin.password, dbname=pg_admin.database, autocommit=True,
            ) as conn:  # fmt: skip
                conn.execute(f"create database {name}")
            pg_url = pg_admin.set(database=name).render_as_string(hide_password=False)
        for engine in args.engines:
            url = pg_url if engine == "postgresql" else f"duckdb:///{workdir / 'naive.duckdb'}"
            results.append(
                (engine, "DataFrame.to_sql", run_worker("to_sql", url, args.sample, Path()))
            )
        for rows in args.rows:
            csv = workdir / f"rows_{rows}.csv"
            write_csv(csv, rows)
            for engine in args.engines:
                if engine == "duckdb":
                    db = workdir / f"ours_{rows}.duckdb"
                    ours = run_worker("ours", f"duckdb:///{db}", rows, csv)
                    floor_db = workdir / f"floor_{rows}.duckdb"
                    floor = run_worker("read_csv", f"duckdb:///{floor_db}", rows, csv)
                    results += [(engine, "ours: Arrow chunks", ours), (engine, "read_csv", floor)]
                else:
                    ours = run_worker("ours", pg_url, rows, csv)
                    floor = psql_copy(pg_url, rows, csv)
                    results += [
                        (engine, "ours: psycopg COPY", ours),
                        (engine, "psql \\copy", floor),
                    ]
            csv.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if pg_url is not None:
            import psycopg

            with psycopg.connect(
                host=pg_admin.host, port=pg_admin.port or 5432, user=pg_admin.username,
                password=pg_admin.password, dbname=pg_admin.database, autocommit=True,
            ) as conn:  # fmt: skip
                conn.execute(f"drop database if exists kpi_bench_{os.getpid()} with (force)")
    print_table(results)
    return 0


def print_table(results: list[tuple[str, str, dict]]) -> None:
    print("| engine | method | rows | rows/s | peak RSS | RSS before the load |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for engine, method, r in results:
        rss = f"{r['peak_rss'] / 2**20:,.0f} MiB" if r["peak_rss"] else "—"
        before = f"{r['rss_before'] / 2**20:,.0f} MiB" if r.get("rss_before") else "—"
        rate = r["rows"] / r["seconds"]
        print(f"| {engine} | {method} | {r['rows']:,} | {rate:,.0f} | {rss} | {before} |")
    print()
    naive = {e: r["rows"] / r["seconds"] for e, m, r in results if m == "DataFrame.to_sql"}
    for engine, method, r in results:
        if method.startswith("ours"):
            floor = next(
                f for e, m, f in results
                if e == engine and f["rows"] == r["rows"] and m in ("read_csv", "psql \\copy")
            )  # fmt: skip
            ours = r["rows"] / r["seconds"]
            to_floor = ours / (floor["rows"] / floor["seconds"])
            print(
                f"{engine} {r['rows']:,} rows: ours / floor = {to_floor:.2f}, "
                f"ours / to_sql = {ours / naive[engine]:.0f}x"
            )


if __name__ == "__main__":
    raise SystemExit(main())
