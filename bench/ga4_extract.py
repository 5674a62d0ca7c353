"""GA4 extract benchmark: 1,000,000 rows from the fake Data API server into DuckDB.

    .venv/bin/python bench/ga4_extract.py                  # 1M rows
    .venv/bin/python bench/ga4_extract.py --rows 200000 --skip-naive

The fake server (tests/sources/ga4/fake_ga4.py) runs in its own process on 127.0.0.1 and
generates synthetic traffic rows page by page: day 1 holds rows/4, day 2 rows/2, day 3 all
`--rows`, so one page size gives 4x more pages from day 1 to day 3. Each load runs in a
fresh client process using the real `BetaAnalyticsDataClient`, so its peak RSS (ru_maxrss)
is its own:

- extract: pages parsed into typed frames by the extractor, then dropped (the client alone);
- streaming: the production path (`load_day` of `kpi_pipeline.loading.ga4`): each page parsed and
  bulk-inserted into DuckDB in the day's transaction, then dropped;
- naive: every page's rows collected as dicts into one DataFrame, then `DataFrame.to_sql`.

Runs: extract and streaming at one page size over days 1-3 (4x the pages), streaming day 3
at larger page sizes (memory follows the page size, up to the API's 250,000 cap), and the
naive path on day 3. Not a test: figures go in the README's GA4 section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sources" / "ga4"))

DAY = dt.date(2026, 1, 5)
_MEDIUMS = ("organic", "cpc", "email", "referral", "social")
_DEVICES = ("desktop", "mobile", "tablet")


def _rows_maker(total: int, on: dt.date):
    day = on.strftime("%Y%m%d")

    def rows(offset: int, limit: int) -> list[list[str]]:
        return [
            [
                day,
                f"source{i % 97}",
                _MEDIUMS[i % 5],
                f"campaign{i % 1013}",
                f"/page/{i}",
                _DEVICES[i % 3],
                str(i % 50 + 1),
                str(i % 25),
                f"{i % 3}.0",
            ]
            for i in range(offset, min(offset + limit, total))
        ]

    return rows


def _totals(rows: int) -> list[int]:
    return [rows // 4, rows // 2, rows]


def serve(rows: int) -> None:
    """Server process: print the target, then serve until stdin closes."""
    from fake_ga4 import FakeGa4
    from fake_ga4 import serve as serve_fake

    makers = {
        DAY + dt.timedelta(days=k): (n, _rows_maker(n, DAY + dt.timedelta(days=k)))
        for k, n in enumerate(_totals(rows))
    }

    def generated(report: str, day: dt.date):
        total, maker = makers[day]
        return (total if report == "traffic" else 0, maker)

    fake = FakeGa4(generated=generated)
    with serve_fake(fake) as target:
        print(target, flush=True)
        sys.stdin.read()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def client(
    mode: str, target: str, page_size: int, db: str, day: dt.date, memory_limit: str | None
) -> None:
    """Client process: one load, then a JSON line with rows, seconds and peak RSS."""
    from kpi_pipeline.loading.ga4 import load_day
    from kpi_pipeline.plan.ga4 import Ga4Source
    from kpi_pipeline.sources.ga4 import TRAFFIC_REPORT, Ga4Extractor
    from kpi_pipeline.sources.ga4.client import open_client
    from kpi_pipeline.sources.ga4.reports import GA4_TABLES, build_request
    from kpi_pipeline.warehouse.engine import Warehouse

    source = Ga4Source(id="bench", property_id="1", page_size=page_size)
    warehouse = Warehouse.from_url(f"duckdb:///{db}")
    if memory_limit:
        with warehouse.engine.connect() as conn:
            conn.exec_driver_sql(f"set global memory_limit = '{memory_limit}'")
    for spec in GA4_TABLES:
        warehouse.ensure_table(spec)
    rss_before = _peak_rss_mib()
    started = time.perf_counter()
    with open_client(credentials_file=None, endpoint=target) as ga4:
        if mode == "streaming":
            extractor = Ga4Extractor(ga4, source, event_names=[], plan_timezone="UTC")
            logs = load_day(warehouse, extractor, source, day)
            rows, pages = logs[0].row_count, logs[0].pages
        elif mode == "extract":
            # The same pages and typed frames, dropped instead of loaded: the client's own
            # memory, without the warehouse's.
            extractor = Ga4Extractor(ga4, source, event_names=[], plan_timezone="UTC")
            for item in extractor.stream_day(TRAFFIC_REPORT, day):
                log = item  # each page is dropped on the next iteration; the last is the DayLog
            rows, pages = log.row_count, log.pages
        else:
            import pandas as pd

            records, offset, pages = [], 0, 0
            while True:
                response = ga4.run_report(
                    request=build_request(
                        property_id="1",
                        report=TRAFFIC_REPORT,
                        day=day,
                        offset=offset,
                        limit=page_size,
                        key_event_metrics=["keyEvents"],
                        event_names=[],
                    )
                )
                names = [h.name for h in response.dimension_headers] + [
                    h.name for h in response.metric_headers
                ]
                for row in response.rows:
                    values = [v.value for v in row.dimension_values]
                    values += [v.value for v in row.metric_values]
                    records.append(dict(zip(names, values, strict=True)))
                pages += 1
                offset += len(response.rows)
                if not response.rows or offset >= response.row_count:
                    break
            frame = pd.DataFrame(records)
            frame.to_sql(
                "ga4_traffic_naive",
                warehouse.engine,
                schema="raw",
                if_exists="replace",
                index=False,
                chunksize=10_000,
            )
            rows = len(frame)
    seconds = time.perf_counter() - started
    table = {"streaming": "ga4_traffic", "naive": "ga4_traffic_naive"}.get(mode)
    stored = (
        warehouse.read_frame(f"select count(*) as n from raw.{table}")["n"].iloc[0]
        if table
        else rows
    )
    warehouse.dispose()
    print(
        json.dumps(
            {
                "mode": mode,
                "page_size": page_size,
                "pages": pages,
                "rows": int(rows),
                "stored": int(stored),
                "seconds": seconds,
                "rows_per_s": rows / seconds,
                "baseline_rss_mib": rss_before,
                "peak_rss_mib": _peak_rss_mib(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=25_000, help="for the page-count runs")
    parser.add_argument("--large-page-sizes", type=int, nargs="*", default=[100_000, 250_000])
    parser.add_argument("--naive-page-size", type=int, default=100_000)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--memory-limit", help="DuckDB memory_limit for the loads (e.g. 256MB; default DuckDB's)"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--day", type=dt.date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.client:
        client(args.client, args.target, args.page_size, args.db, args.day, args.memory_limit)
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.rows)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        target = server.stdout.readline().strip()
        totals = _totals(args.rows)
        last = DAY + dt.timedelta(days=2)
        runs = [
            (mode, args.page_size, DAY + dt.timedelta(days=k))
            for mode in ("extract", "streaming")
            for k in range(3)
        ]
        runs += [("streaming", size, last) for size in args.large_page_sizes]
        if not args.skip_naive:
            runs.append(("naive", args.naive_page_size, last))
        results = []
        for mode, size, day in runs:
            with tempfile.TemporaryDirectory() as tmp:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--client",
                        mode,
                        "--target",
                        target,
                        "--page-size",
                        str(size),
                        "--day",
                        day.isoformat(),
                        *(["--memory-limit", args.memory_limit] if args.memory_limit else []),
                        "--db",
                        str(Path(tmp) / "bench.duckdb"),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            assert result["stored"] == totals[(day - DAY).days], result
            results.append(result)
            print(
                f"{mode:9} page {size:>7,} x {result['pages']:>3} pages: "
                f"{result['rows']:>9,} rows in {result['seconds']:6.1f} s = "
                f"{result['rows_per_s']:>9,.0f} rows/s, peak RSS {result['peak_rss_mib']:6.0f} MiB "
                f"(after imports {result['baseline_rss_mib']:.0f} MiB)",
                flush=True,
            )
        streaming = [r for r in results if r["mode"] == "streaming"]
        naive = [r for r in results if r["mode"] == "naive"]
        if naive:
            same = next(
                r
                for r in streaming
                if r["page_size"] == naive[0]["page_size"] and r["rows"] == naive[0]["rows"]
            )
            print(
                f"streaming / naive at {same['rows']:,} rows, page {same['page_size']:,}: "
                f"{same['rows_per_s'] / naive[0]['rows_per_s']:.1f}x rows/s, peak RSS "
                f"{same['peak_rss_mib']:.0f} MiB vs {naive[0]['peak_rss_mib']:.0f} MiB"
            )
    finally:
        server.stdin.close()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
