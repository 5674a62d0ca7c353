"""Full recompute of every KPI x 4 grains x segments vs one GROUP BY pass, same DuckDB, same run.

    .venv/bin/python bench/full_recompute.py [--rows 20000000]

Synthetic GA4-like raw rows (date, source / medium / campaign, device, sessions, engaged
sessions, conversions, users...) over ~3 years. The baseline is one `GROUP BY` pass over
the raw table (per day and traffic source). The full recompute is what the KPI models do,
shaped as they are: aggregate the raw rows once per day and segment (tactic from the UTM
mapping, channel, device), then roll those daily rows up to day / ISO week / month / fiscal
quarter through the calendar for each KPI (sum ratios of sums, never averages of ratios),
segments 'all' + tactic + channel + device. Prints both times, the ratio (target <= 3x)
and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time

import duckdb

KPIS = {  # kpi -> (numerator, denominator or None)
    "sessions": ("sessions", None),
    "engagement_rate": ("engaged_sessions", "sessions"),
    "conversion_rate": ("conversions", "sessions"),
    "conversions": ("conversions", None),
    "users": ("users", None),
}


def build_raw(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    days = 1096
    con.execute(
        f"""
        create table raw_ga4 as
        select
            date '2024-01-01' + cast(i % {days} as integer) as date,
            'source_' || cast((i // {days}) % 40 as varchar) as source,
            case (i // {days * 40}) % 4 when 0 then 'cpc' when 1 then 'organic'
                when 2 then 'email' else 'referral' end as medium,
            'campaign_' || cast((i // {days * 160}) % 30 as varchar) as campaign,
            case (i // 7) % 3 when 0 then 'desktop' when 1 then 'mobile' else 'tablet' end
                as device,
            cast(1 + hash(i) % 50 as bigint) as sessions,
            cast(hash(i * 3) % 30 as bigint) as engaged_sessions,
            cast(hash(i * 7) % 4 as bigint) as conversions,
            cast(1 + hash(i * 11) % 40 as bigint) as users
        from range({rows}) as t(i)
        """
    )
    # The UTM -> tactic mapping (first matching rule, as int_traffic_sources_mapped_to_tactics).
    con.execute(
        """
        create table tactics as
        select source, medium, campaign,
            case when medium = 'cpc' then 'paid_search' when medium = 'email' then 'newsletter'
                 when campaign like 'campaign_1%' then 'launch' else 'unattributed' end
                as tactic_id,
            medium as channel
        from (select distinct source, medium, campaign from raw_ga4)
        """
    )
    # The plan calendar: one row per day and grain (fiscal year starting in April).
    con.execute(
        """
        create table calendar as
        with days as (
            select cast(d as date) as date
            from range(date '2024-01-01', date '2027-01-02', interval 1 day) as t(d)
        )
        select date, 'day' as grain, date as period_start from days
        union all select date, 'week', cast(date_trunc('week', date) as date) from days
        union all select date, 'month', cast(date_trunc('month', date) as date) from days
        union all select date, 'quarter',
            cast(date_trunc('quarter', date - interval 3 month) + interval 3 month as date)
        from days
        """
    )


def baseline(con: duckdb.DuckDBPyConnection) -> int:
    """One GROUP BY pass over the raw table."""
    return con.execute(
        """
        select count(*) from (
            select date, source, medium, campaign,
                sum(sessions), sum(engaged_sessions), sum(conversions), sum(users)
            from raw_ga4 group by all
        )
        """
    ).fetchone()[0]


def full_recompute(con: duckdb.DuckDBPyConnection) -> int:
    """Every KPI x grain x period x segment, from one daily aggregation."""
    con.execute("drop table if exists daily")
    # Aggregate the raw rows once: per day and the finest segment combination.
    con.execute(
        """
        create temporary table daily as
        select raw.date, tactics.tactic_id, tactics.channel, raw.device,
            sum(sessions) as sessions, sum(engaged_sessions) as engaged_sessions,
            sum(conversions) as conversions, sum(users) as users
        from raw_ga4 as raw
        inner join tactics using (source, medium, campaign)
        group by all
        """
    )
    measures = ", ".join(
        f"sum({num}) as {kpi}__num" + (f", sum({den}) as {kpi}__den" if den else "")
        for kpi, (num, den) in KPIS.items()
    )
    # Then roll the (small) daily table up to every grain and segment in one grouping-sets
    # pass: 'all', tactic, channel and device.
    return con.execute(
        f"""
        select count(*) from (
            select calendar.grain, calendar.period_start,
                daily.tactic_id, daily.channel, daily.device, {measures}
            from daily
            inner join calendar on calendar.date = daily.date
            group by grouping sets (
                (calendar.grain, calendar.period_start),
                (calendar.grain, calendar.period_start, daily.tactic_id),
                (calendar.grain, calendar.period_start, daily.channel),
                (calendar.grain, calendar.period_start, daily.device)
            )
        )
        """
    ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    con = duckdb.connect()
    started = time.perf_counter()
    build_raw(con, args.rows)
    print(f"raw rows: {args.rows:,} built in {time.perf_counter() - started:.1f} s")
    timings: dict[str, list[float]] = {"group_by": [], "full_recompute": []}
    outputs = {}
    for _ in range(args.repeat):
        for name, fn in (("group_by", baseline), ("full_recompute", full_recompute)):
            t0 = time.perf_counter()
            outputs[name] = fn(con)
            timings[name].append(time.perf_counter() - t0)
    best = {name: min(times) for name, times in timings.items()}
    ratio = best["full_recompute"] / best["group_by"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"one GROUP BY pass: {best['group_by']:.2f} s ({outputs['group_by']:,} groups)")
    print(
        f"full recompute ({len(KPIS)} KPIs x 4 grains x segments): "
        f"{best['full_recompute']:.2f} s ({outputs['full_recompute']:,} period x segment rows)"
    )
    print(f"ratio: {ratio:.2f}x (target <= 3x); peak RSS {peak_mb:,.0f} MB; best of {args.repeat}")


if __name__ == "__main__":
    main()
