"""Does a one-day run cost more as history grows? Synthetic GA4-like history, real job.

    .venv/bin/python bench/daily_cost.py                          # 30, 365, 1000 days, both engines
    .venv/bin/python bench/daily_cost.py --days 30 365 --engines duckdb --rows-per-day 1000

For each history length N and engine: a copy of the demo plan whose `history_start` is N
days before `--last-day`, CSV exports with `--rows-per-day` rows per day (every tactic's
traffic, organic search and referrals over hundreds of landing pages and three devices; the
form events in proportion), loaded by one range run of the real job (the history), then
`kpi-pipeline run --date <last day>` timed `--repeat` times as a person runs it (a new
process, quiet). The last day is re-run: the same data again, as a daily re-run after a
late GA4 revision is. All sizes run in this one invocation, so the ratios are measured on
the same machine at the same time (the load average is printed with them).

CSV exports are the cheapest realistic path: the same loading, SQL models, checks and
scoring as GA4's raw tables feed, without a fake server in the loop.

PostgreSQL: `--postgres-admin-url` (default postgres@127.0.0.1:5432, trust) creates one
database per history length, dropped at the end.

Not a test: figures go in the README ("Running at scale").
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "kpi_pipeline.cli"]
# Sources the demo plan's tactics match, plus traffic no tactic claims.
CHANNELS = [
    ("newsletter", "email", "weekly_news"),
    ("klaviyo", "email", "cart_reminder_1"),
    ("google", "cpc", "brand_search"),
    ("google", "cpc", "generic_tents"),
    ("bing", "cpc", "generic_boots"),
    ("facebook", "paid_social", "spring_sale"),
    ("google", "organic", ""),
    ("bing", "organic", ""),
    ("(direct)", "(none)", ""),
    ("blog.example.org", "referral", ""),
]
DEVICES = ["desktop", "mobile", "tablet"]


def export_frame(first: dt.date, last: dt.date, rows_per_day: int, seed: int) -> pd.DataFrame:
    """`rows_per_day` distinct (source, medium, campaign, page, device) rows for every day."""
    rng = np.random.default_rng(seed)
    pages = -(-rows_per_day // (len(CHANNELS) * len(DEVICES)))  # enough for rows_per_day
    combos = pd.MultiIndex.from_product(
        [range(len(CHANNELS)), range(pages), range(len(DEVICES))], names=["c", "p", "d"]
    ).to_frame(index=False)[:rows_per_day]
    days = pd.date_range(first, last, freq="D")
    frame = combos.merge(pd.DataFrame({"date": days}), how="cross")
    n = len(frame)
    sessions = rng.poisson(20, n) + 1
    engaged = rng.binomial(sessions, 0.6)
    key_events = rng.binomial(engaged, 0.05)
    starts = rng.binomial(engaged, 0.04)
    return pd.DataFrame(
        {
            "date": frame["date"].dt.strftime("%Y-%m-%d"),
            "session_source": [CHANNELS[c][0] for c in frame["c"]],
            "session_medium": [CHANNELS[c][1] for c in frame["c"]],
            "session_campaign": [CHANNELS[c][2] for c in frame["c"]],
            "landing_page": "/p/" + frame["p"].astype(str),
            "device_category": [DEVICES[d] for d in frame["d"]],
            "sessions": sessions,
            "engaged_sessions": engaged,
            "key_events": key_events,
            "form_start_events": starts,
            "form_submit_events": rng.binomial(starts, 0.5),
        }
    )


def make_project(root: Path, days: int, last: dt.date, rows_per_day: int) -> Path:
    """Demo plan with `days` of history ending `last`, and its monthly CSV exports."""
    first = last - dt.timedelta(days=days - 1)
    plan_dir, data_dir = root / "plan_config", root / "data" / "demo"
    plan_dir.mkdir(parents=True)
    data_dir.mkdir(parents=True)
    from kpi_pipeline.definitions import DEFAULT_PLAN

    plan_text = Path(DEFAULT_PLAN).read_text(encoding="utf-8")
    plan_text = re.sub(
        r"^history_start: \S+", f"history_start: {first.isoformat()}", plan_text, flags=re.M
    )
    (plan_dir / "demo.yaml").write_text(plan_text, encoding="utf-8")
    frame = export_frame(first, last, rows_per_day, seed=days)
    for month, part in frame.groupby(frame["date"].str.slice(0, 7)):
        part.to_csv(data_dir / f"ga4_export_{month}.csv", index=False)
    return plan_dir / "demo.yaml"


def cli_run(plan: Path, url: str, cwd: Path, *when: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPI_", "DAGSTER_HOME"))}
    env["KPI_WAREHOUSE_URL"] = url
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, "run", "--quiet", "--plan", str(plan), *when],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"run {' '.join(when)} failed:\n{done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


def postgres_database(admin_url: str, name: str, create: bool) -> str:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )
        if create:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    user_host = admin_url.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+psycopg://{user_host}/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365, 1000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgresql"])
    parser.add_argument("--rows-per-day", type=int, default=2000)
    parser.add_argument("--last-day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="build the projects in this (new) folder and keep them, with their PostgreSQL "
        "databases, to profile the warehouses afterwards",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="daily_cost_") as tmp:
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            tmp = str(args.keep)
        for days in args.days:
            root = Path(tmp) / f"history_{days}"
            plan = make_project(root, days, args.last_day, args.rows_per_day)
            first = args.last_day - dt.timedelta(days=days - 1)
            for engine in args.engines:
                if engine == "duckdb":
                    url = f"duckdb:///{root / f'kpi_{days}.duckdb'}"
                else:
                    url = postgres_database(args.postgres_admin_url, f"bench_daily_{days}", True)
                try:
                    history = cli_run(
                        plan,
                        url,
                        root,
                        "--from",
                        first.isoformat(),
                        "--to",
                        args.last_day.isoformat(),
                    )
                    one_day = [
                        cli_run(plan, url, root, "--date", args.last_day.isoformat())
                        for _ in range(args.repeat)
                    ]
                finally:
                    if engine != "duckdb" and args.keep is None:
                        postgres_database(args.postgres_admin_url, f"bench_daily_{days}", False)
                results[(engine, days)] = {
                    "history": history,
                    "one_day": statistics.median(one_day),
                }
                print(
                    f"{engine:10} {days:5} days ({days * args.rows_per_day:,} rows): history run "
                    f"{history:6.1f} s, one-day run median {statistics.median(one_day):5.1f} s "
                    f"{[round(t, 1) for t in one_day]}",
                    flush=True,
                )
            if args.keep is None:
                shutil.rmtree(root / "data")
    print(f"load average after: {os.getloadavg()}")
    base = min(args.days)
    for engine in args.engines:
        for days in args.days:
            if (engine, days) in results and (engine, base) in results:
                ratio = results[(engine, days)]["one_day"] / results[(engine, base)]["one_day"]
                print(
                    f"{engine:10} one-day run, {days:5} days of history / {base} days: {ratio:.2f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
