"""Snapshot growth benchmark: a year of daily runs stores rows in proportion to changes.

    .venv/bin/python bench/snapshot_growth.py                  # 365 runs, DuckDB in a tmp dir
    .venv/bin/python bench/snapshot_growth.py --runs 60 --url postgresql+psycopg://...

Simulates `--runs` daily runs of a plan with `--kpis` KPIs x `--segments` segments (the
whole site and tactics) x 4 grains (day, week, month, quarter), starting from
`--history-days` of history and growing by one day per run. Each run recomputes the whole
`kpi_scores` as the pipeline does: the newest day arrives flagged `late_data` (cleared the
next run), the last `--revision-days` days are revised by late data (as GA4 revises), and
the current week, month and quarter are partial. Each run's scores go through the real
write path (`prepare_snapshots` once, then `write_snapshot` in a transaction per run) into
the warehouse at `--url` (a fresh DuckDB file by default; a PostgreSQL database must be
empty of the plan `bench`).

It prints, from the warehouse: rows an append-only table would hold (the sum of every
run's `kpi_scores`) against rows stored as versions, per-run stored rows early and late in
the year (flat: they follow the changes, not the history), the median time of a snapshot
write early and late, and checks the view's answer for a few runs against the scores the
run reported (exits non-zero on any difference).

Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.metrics.snapshots import SCORE_COLUMNS, SCORE_KEYS, canonical_scores
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.snapshots import prepare_snapshots, write_snapshot

HISTORY_START = dt.date(2025, 1, 1)
GRAINS = {"week": "W-SUN", "month": "M", "quarter": "Q"}


def scores_of_run(last_day: int, kpis: int, segments: int, revision_days: int) -> pd.DataFrame:
    """The whole `kpi_scores` a run computes with days 0..last_day of history."""
    days = np.arange(last_day + 1)
    kpi, segment, day = (a.ravel() for a in np.meshgrid(range(kpis), range(segments), days))
    # A stable value per KPI, segment and day; the last `revision_days` days grow a little
    # on each run until they settle (late data), so they change run after run.
    settled = ((day * 37 + kpi * 11 + segment * 5) % 101).astype(float) + 50
    age = last_day - day
    value = settled * np.where(age < revision_days, 1 - 0.02 * (revision_days - age), 1.0)
    dates = pd.Timestamp(HISTORY_START) + pd.to_timedelta(day, unit="D")
    daily = pd.DataFrame(
        {
            "kpi_id": [f"kpi_{k}" for k in kpi],
            "segment_type": np.where(segment == 0, "all", "tactic"),
            "segment": [("all" if s == 0 else f"tactic_{s}") for s in segment],
            "date": dates,
            "value": value,
        }
    )
    as_of = pd.Timestamp(HISTORY_START) + pd.Timedelta(days=last_day)
    frames = [
        daily.assign(
            grain="day",
            period_start=daily["date"],
            period_end=daily["date"],
            days_with_data=1,
            is_partial=False,
            as_of_date=daily["date"],
            quality_flags=np.where(daily["date"] == as_of, "late_data", None),
        ).drop(columns="date")
    ]
    for grain, freq in GRAINS.items():
        period = daily["date"].dt.to_period(freq)
        grouped = daily.assign(period=period).groupby(
            ["kpi_id", "segment_type", "segment", "period"], as_index=False
        )
        rolled = grouped.agg(
            value=("value", "sum"), days_with_data=("value", "size"), as_of_date=("date", "max")
        )
        starts = rolled["period"].dt.start_time.dt.normalize()
        ends = rolled["period"].dt.end_time.dt.normalize()
        frames.append(
            rolled.drop(columns="period").assign(
                grain=grain,
                period_start=starts,
                period_end=ends,
                is_partial=ends > as_of,
                quality_flags=np.where(ends >= as_of, "late_data", None),
            )
        )
    scores = pd.concat(frames, ignore_index=True)
    target = scores["days_with_data"] * 100.0
    scores = scores.assign(
        kpi_label=scores["kpi_id"],
        kind="count",
        direction="increase",
        objective_id="grow",
        objective_title="Grow",
        objective_priority=1,
        period_label=scores["grain"] + " " + scores["period_start"].dt.strftime("%Y-%m-%d"),
        numerator=scores["value"],
        denominator=1.0,
        expected=target * 0.9,
        target=target,
        tolerance_band=0.05,
        status=np.where(scores["value"] >= target * 0.9, "on_track", "behind"),
        ci_low=scores["value"] * 0.95,
        ci_high=scores["value"] * 1.05,
    )
    for column in SCORE_COLUMNS:
        if column not in scores:
            scores[column] = None
    return scores[SCORE_COLUMNS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--history-days", type=int, default=180)
    parser.add_argument("--kpis", type=int, default=4)
    parser.add_argument("--segments", type=int, default=7, help="the whole site + tactics")
    parser.add_argument("--revision-days", type=int, default=3)
    parser.add_argument("--url", help="warehouse URL (default: a DuckDB file in a tmp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"duckdb:///{Path(tmp) / 'kpi.duckdb'}"
        wh = Warehouse.from_url(url, "bench")
        schema = wh.schema_name("marts")
        if wh.table_exists("marts", "kpi_snapshot_runs"):
            # Not ours to drop: an earlier bench left it, or someone's plan is named "bench".
            print(f"{schema} already exists in {wh.engine.url!r}: drop it or use another database")
            return 2
        try:
            return bench(wh, args)
        finally:
            # Everything this bench wrote lives in its own schema, created above.
            with wh.transaction() as conn:
                conn.exec_driver_sql(f"drop schema if exists {schema} cascade")
            wh.dispose()


def bench(wh: Warehouse, args: argparse.Namespace) -> int:
    prepare_snapshots(wh)
    wh.ensure_table(KPI_SCORES)
    checked = {1, args.runs // 2, args.runs}
    reported, opened, seconds, answers = [], [], [], {}
    started = dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)
    for run in range(1, args.runs + 1):
        last_day = args.history_days + run - 1
        scores = scores_of_run(last_day, args.kpis, args.segments, args.revision_days)
        # The daily run leaves its scores in kpi_scores; the snapshot reads them there.
        with wh.transaction() as conn:
            wh.replace_all(conn, KPI_SCORES, scores)
        clock = time.perf_counter()
        with wh.transaction() as conn:
            written = write_snapshot(
                wh, conn, f"run-{run:04d}", started + dt.timedelta(days=run), "bench"
            )
        seconds.append(time.perf_counter() - clock)
        reported.append(written.reported)
        opened.append(written.opened)
        if run in checked:
            answers[run] = scores

    stored = int(
        wh.read_frame(f"select count(*) as n from {wh.relation('marts', 'kpi_score_versions')}")[
            "n"
        ].iloc[0]
    )
    mismatched = []
    for run, scores in answers.items():
        view = wh.read_frame(
            f"select * from {wh.relation('marts', 'kpi_snapshots')} where run_id = :run_id",
            {"run_id": f"run-{run:04d}"},
        )
        same = (
            canonical_scores(view)
            .sort_values(SCORE_KEYS, ignore_index=True)
            .equals(canonical_scores(scores).sort_values(SCORE_KEYS, ignore_index=True))
        )
        if not same:
            mismatched.append(run)

    month = min(30, args.runs)
    appended = sum(reported)
    print(
        f"{args.runs} daily runs on {wh.dialect}, history {args.history_days} -> "
        f"{args.history_days + args.runs - 1} days, {args.kpis} KPIs x {args.segments} "
        f"segments x 4 grains, last {args.revision_days} days revised each run"
    )
    print(
        f"append-only would hold: {appended:,} rows "
        f"({reported[0]:,} per run at first, {reported[-1]:,} at the end)"
    )
    print(
        f"stored as changes:      {stored:,} rows ({appended / stored:.0f}x fewer); "
        f"first run {opened[0]:,}, then median {statistics.median(opened[1:] or [0]):,.0f} "
        f"per run"
    )
    print(
        f"rows stored per run, runs 2-{month + 1} vs last {month}: "
        f"{statistics.mean(opened[1 : month + 1]):,.1f} vs {statistics.mean(opened[-month:]):,.1f}"
    )
    print(
        f"snapshot write, median, runs 2-{month + 1} vs last {month}: "
        f"{statistics.median(seconds[1 : month + 1]) * 1000:,.0f} ms vs "
        f"{statistics.median(seconds[-month:]) * 1000:,.0f} ms"
    )
    verdict = "all exact" if not mismatched else f"DIFFER for runs {mismatched}"
    print(f"view answers for runs {sorted(answers)}: {verdict}")
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
