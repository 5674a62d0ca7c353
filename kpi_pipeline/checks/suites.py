"""Which checks each asset gets, built from declarations rather than written per table.

- every SQL model: its header's `-- keys:` unique and not null;
- every raw table: the `checks` of its `TableSpec` (counts non-negative, engaged <= sessions,
  events plausible against sessions, dates inside the plan's history);
- derived checks on each source's main raw table: freshness, volume anomaly (robust: the
  trailing median and MAD of its daily sessions), quarantine rate;
- marts: rates in [0, 1], numerator <= denominator for rates, every KPI x grain x segment
  present for each closed period with data, snapshots append-only.

A suite is a SELECT written with declared schemas (`raw.csv_traffic`, made the plan's own
by `Warehouse.plan_sql`) and the expectations its rows must meet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from kpi_pipeline.lib.checks import Expect
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.warehouse.sql_models import SqlModel


@dataclass(frozen=True)
class Suite:
    asset: tuple[str, str]  # declared schema and table: the Dagster asset it is attached to
    query: str
    expectations: tuple[Expect, ...]
    # Columns naming a failing row's source and day: failures become quality flags there.
    flag_columns: tuple[str, str] | None = None
    params: dict = field(default_factory=dict)  # bind parameters of `query`
    # Computes the checked columns from the query's rows (robust bands, ratios): such a
    # suite is checked on that frame; the others run in the warehouse where GX can.
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class RunWindow:
    """The days a run checks: its own (and the look-back it re-read), and the plan's limits."""

    first: dt.date
    last: dt.date
    history_start: dt.date
    today: dt.date


# Which rows of a model a run checks (`model_suites`):
# - "all": every row (a full build);
# - "window": a model keyed by date, the run's own days, as the raw tables' checks do (a
#   staging view, checked before the run's incremental scope exists);
# - "incremental": a model keyed by date, or by grain and period, only the days / periods
#   the run recomputed (the other rows are those an earlier run built and checked).
ModelScope = str
_SCOPE_DAYS = "intermediate.incremental_run_days"
_SCOPE_PERIODS = "intermediate.incremental_run_periods"


def model_suites(
    models: list[SqlModel], scope: ModelScope = "all", window: RunWindow | None = None
) -> list[Suite]:
    """`-- keys:` unique and not null, for every SQL model, over the rows `scope` says."""
    suites = []
    for model in models:
        keys = model.keys
        columns = ", ".join(keys)
        where, params = _model_rows(keys, scope, window)
        suites.append(
            Suite(
                (model.layer, model.name),
                _run_rows(f"select {columns} from {model.layer}.{model.name}{where}"),
                (
                    Expect("keys_unique", "unique", keys, f"one row per {columns}"),
                    Expect("keys_not_null", "not_null", keys, f"{columns} never null"),
                ),
                params=params,
            )
        )
    return suites


def _run_rows(select: str) -> str:
    """`select`, its rows taken first: GX wraps a suite's query in its own filters and a
    LIMIT, for which PostgreSQL would rather scan the whole table than use the index the
    WHERE was written for (a materialized CTE is planned on its own; 240 ms -> 4 ms a check
    on 2 M rows)."""
    if " where " not in select:
        return select
    # (GX wants a query asset to start with SELECT.)
    return (
        f"select * from (with run_rows as materialized ({select}) select * from run_rows) "
        "as run_rows"
    )


def _model_rows(
    keys: tuple[str, ...], scope: ModelScope, window: RunWindow | None
) -> tuple[str, dict]:
    """The WHERE clause (and its parameters) keeping the rows a key check must read: with
    `date` (or `grain` and `period_start`) among the keys, duplicates can only sit within
    one day (period), so the days (periods) not rebuilt cannot hold new ones."""
    if scope == "incremental" and "date" in keys:
        return f" where date in (select date from {_SCOPE_DAYS})", {}
    if scope == "incremental" and {"grain", "period_start"} <= set(keys):
        return (
            f" where exists (select 1 from {_SCOPE_PERIODS} as p where p.affected_grain = grain"
            " and p.affected_period_start = period_start)",
            {},
        )
    if scope == "window" and window is not None and "date" in keys:
        # Rows dated outside the plan's history too: no run's window would ever hold them.
        return (
            " where (date between :first and :last) or date < :history_start or date > :today",
            _window_params(window),
        )
    return "", {}


def raw_suites(specs: list[TableSpec], window: RunWindow) -> list[Suite]:
    """Each raw table's declared checks, over the run's days and any row dated outside the
    plan's history (which `dates_in_history` exists to catch)."""
    suites = []
    for spec in specs:
        dated = "date" in spec.column_names
        keys = spec.keys
        declared = (
            (
                Expect("keys_unique", "unique", keys, f"one row per {', '.join(keys)}"),
                Expect("keys_not_null", "not_null", keys, f"{', '.join(keys)} never null"),
            )
            if keys
            else ()
        )
        where = ""
        if dated and "source_id" in spec.column_names:
            # Each arm on (source_id, date), the raw tables' index: PostgreSQL reads the run's
            # days and any out-of-history rows from it instead of scanning all history.
            sources = "source_id = any(array((select source_id from plan.sources)))"
            where = " where " + " or ".join(
                f"({sources} and {days})"
                for days in (
                    "date between :first and :last",
                    "date < :history_start",
                    "date > :today",
                )
            )
        elif dated:
            where = (
                " where (date between :first and :last) or date < :history_start or date > :today"
            )
        suites.append(
            Suite(
                (spec.schema, spec.name),
                _run_rows(f"select * from {spec.schema}.{spec.name}{where}"),
                (*declared, *spec.checks),
                ("source_id", "date") if dated and "source_id" in spec.column_names else None,
                _window_params(window) if dated else {},
            )
        )
    return suites


# Each source kind's main raw table, where its freshness and volume checks live.
MAIN_TABLE = {
    "csv_exports": ("raw", "csv_traffic"),
    "ga4": ("raw", "ga4_traffic"),
    "email": ("raw", "email_campaigns"),
    "session_csvs": ("raw", "session_csv_rows"),
}
# How a kind's daily volume is counted for the volume check.
_VOLUME = {
    "csv_exports": ("raw.csv_traffic", "sum(sessions)"),
    "ga4": ("raw.ga4_traffic", "sum(sessions)"),
    "session_csvs": ("raw.session_csv_rows", "count(*)"),
}


def _daily_volume(kind: str) -> str:
    """Each source day's volume from `:since` (the trailing window before the run's first
    day) to `:last`: every day the source covered, 0 when it held no row (a 100 % drop is
    the anomaly most worth catching). Older days cannot move a run day's band."""
    table, measure = _VOLUME[kind]
    days = "date between :since and :last"
    return (
        "select days.source_id, days.date, coalesce(volumes.volume, 0) as volume from ("
        f"select source_id, date from raw.source_days where {days} "
        f"union select distinct source_id, date from {table} where {days}) as days "
        "inner join plan.sources as sources on sources.source_id = days.source_id "
        "and sources.source_kind = :kind "
        f"left join (select source_id, date, {measure} as volume from {table} where {days} "
        "group by 1, 2) as volumes on volumes.source_id = days.source_id "
        "and volumes.date = days.date"
    )


def derived_suites(plan: Plan, window: RunWindow) -> list[Suite]:
    """Freshness, volume anomaly and quarantine rate, per source kind's main table."""
    quality = plan.quality
    suites: list[Suite] = []
    kinds = {kind for _, kind, _ in plan.sources.roles()}
    for kind, asset in MAIN_TABLE.items():
        if kind not in kinds:
            continue
        table = f"{asset[0]}.{asset[1]}"
        expected = window.today - dt.timedelta(days=1 + quality.freshness_lag_days)
        suites.append(
            Suite(
                asset,
                # Last day each declared source of this kind covered (read whole or had rows).
                # (One indexed max per source and table: no scan of the raw history.)
                "select sources.source_id, greatest(coalesce((select max(d.date) from "
                "raw.source_days as d where d.source_id = sources.source_id), "
                "cast(:never as date)), coalesce((select max(t.date) from "
                f"{table} as t where t.source_id = sources.source_id), cast(:never as date))) "
                "as last_day from plan.sources as sources where sources.source_kind = :kind",
                (
                    Expect(
                        "freshness",
                        "between",
                        ("last_day",),
                        f"each source's last covered day is on or after {expected} "
                        f"(yesterday less {quality.freshness_lag_days} day(s) of lag)",
                        min_value=expected.isoformat(),
                    ),
                ),
                params={"kind": kind, "never": window.history_start - dt.timedelta(days=1)},
            )
        )
        if kind in _VOLUME:
            suites.append(
                Suite(
                    asset,
                    _daily_volume(kind),
                    (
                        Expect(
                            "volume_anomaly",
                            "in_set",
                            ("within_band",),
                            f"each day's volume within {quality.volume_band_mads:g} scaled MADs "
                            f"of its trailing {quality.volume_window_days}-day median",
                            value_set=(True,),
                        ),
                    ),
                    ("source_id", "date"),
                    params={
                        "kind": kind,
                        "since": window.first - dt.timedelta(days=quality.volume_window_days),
                        "last": window.last,
                    },
                    derive=partial(
                        volume_bands,
                        first=window.first,
                        last=window.last,
                        window_days=quality.volume_window_days,
                        band_mads=quality.volume_band_mads,
                        min_history=quality.volume_min_history_days,
                    ),
                )
            )
        if kind in ("csv_exports", "session_csvs"):
            suites.append(
                Suite(
                    asset,
                    # Every day with loaded or quarantined rows (all quarantined: 100 %).
                    "select days.source_id, days.date, coalesce(loaded_rows.n, 0) as loaded, "
                    "coalesce(bad.n, 0) as quarantined from ("
                    f"select source_id, date from {table} where date between :first and :last "
                    "union select source_id, partition_date as date from raw.quarantine "
                    "where partition_date between :first and :last) as days "
                    "inner join plan.sources as sources on sources.source_id = days.source_id "
                    "and sources.source_kind = :kind "
                    f"left join (select source_id, date, count(*) as n from {table} "
                    "where date between :first and :last group by 1, 2) as loaded_rows "
                    "on loaded_rows.source_id = days.source_id and loaded_rows.date = days.date "
                    "left join (select source_id, partition_date as date, count(*) as n "
                    "from raw.quarantine where partition_date between :first and :last "
                    "group by 1, 2) as bad "
                    "on bad.source_id = days.source_id and bad.date = days.date",
                    (
                        Expect(
                            "quarantine_rate",
                            "between",
                            ("quarantine_rate",),
                            f"at most {quality.quarantine_rate_max:.1%} of a day's rows "
                            "quarantined",
                            max_value=quality.quarantine_rate_max,
                        ),
                    ),
                    ("source_id", "date"),
                    params={**_window_params(window), "kind": kind},
                    derive=quarantine_rates,
                )
            )
    return suites


def mart_suites(scope: ModelScope = "all") -> list[Suite]:
    """Rates in [0, 1], numerator <= denominator for rates, complete periods, append-only.
    An incremental run checks the periods it recomputed (`scope`)."""
    recomputed = (
        f" and exists (select 1 from {_SCOPE_PERIODS} as p where p.affected_grain = "
        "{t}.grain and p.affected_period_start = {t}.period_start)"
        if scope == "incremental"
        else ""
    )
    rates = (
        "select kv.* from marts.kpi_values as kv inner join plan.kpis as kpis "
        "on kpis.kpi_id = kv.kpi_id where kpis.is_rate" + recomputed.format(t="kv")
    )
    return [
        Suite(
            ("marts", "kpi_values"),
            f"{rates} and kv.value is not null",
            (
                Expect(
                    "rate_in_unit_interval",
                    "between",
                    ("value",),
                    "a rate lies in [0, 1]",
                    min_value=0,
                    max_value=1,
                ),
                Expect(
                    "numerator_le_denominator",
                    "a_le_b",
                    ("numerator", "denominator"),
                    "a rate's numerator never exceeds its denominator",
                ),
            ),
        ),
        Suite(
            ("marts", "kpi_values"),
            # Each KPI x grain x segment type declared, for every closed period it has data.
            "select expected.kpi_id, expected.grain, expected.period_start, "
            "expected.segment_type, count(found.kpi_id) > 0 as present from ("
            "select distinct periods.kpi_id, periods.grain, periods.period_start, "
            "segments.segment_type from marts.kpi_values as periods "
            "inner join plan.kpi_segments as segments on segments.kpi_id = periods.kpi_id "
            "where not periods.is_partial and periods.segment_type = 'all' "
            "and periods.days_with_data > 0" + recomputed.format(t="periods") + ") as expected "
            "left join marts.kpi_values as found on found.kpi_id = expected.kpi_id "
            "and found.grain = expected.grain and found.period_start = expected.period_start "
            "and found.segment_type = expected.segment_type group by 1, 2, 3, 4",
            (
                Expect(
                    "periods_complete",
                    "in_set",
                    ("present",),
                    "every declared KPI x grain x segment type has rows for each closed "
                    "period with data",
                    value_set=(True,),
                ),
            ),
        ),
        Suite(
            ("marts", "kpi_snapshots"),
            # Each run's answer as counted and summed when written (the ledger), against the
            # same from the versions now: a running total, in run order, of the versions each
            # run opened less those it closed (no need to expand every run's rows), and of
            # their magnitudes (`scale_now`: the rounding such a total can carry).
            "select ledger.run_id, ledger.row_count as written_rows, "
            "coalesce(current_rows.row_count, 0) as rows_now, ledger.value_sum as written_sum, "
            "coalesce(current_rows.value_sum, 0) as sum_now, "
            "coalesce(current_rows.scale, 0) as scale_now from marts.snapshot_ledger as ledger "
            "left join (select runs.run_id, "
            "cast(sum(coalesce(delta.row_count, 0)) over w as bigint) as row_count, "
            "cast(sum(coalesce(delta.value_sum, 0)) over w as double precision) as value_sum, "
            "cast(sum(coalesce(delta.scale, 0)) over w as double precision) as scale "
            "from marts.kpi_snapshot_runs as runs left join (select run_seq, "
            "sum(row_count) as row_count, sum(value_sum) as value_sum, sum(scale) as scale "
            "from (select valid_from_run as run_seq, count(*) as row_count, "
            "sum(coalesce(value, 0) + coalesce(numerator, 0)) as value_sum, "
            "sum(abs(coalesce(value, 0)) + abs(coalesce(numerator, 0))) as scale "
            "from marts.kpi_score_versions group by 1 union all select valid_to_run, -count(*), "
            "-sum(coalesce(value, 0) + coalesce(numerator, 0)), "
            "sum(abs(coalesce(value, 0)) + abs(coalesce(numerator, 0))) "
            "from marts.kpi_score_versions where valid_to_run is not null group by 1) as changes "
            "group by 1) as delta on delta.run_seq = runs.run_seq "
            "window w as (order by runs.run_seq)) as current_rows "
            "on current_rows.run_id = ledger.run_id",
            (
                Expect(
                    "snapshots_append_only",
                    "in_set",
                    ("unchanged",),
                    "no run's snapshot rows changed since they were written",
                    value_set=(True,),
                ),
            ),
            derive=snapshot_changes,
        ),
    ]


# 1.4826 x MAD estimates a normal distribution's standard deviation, robust to outliers.
_MAD_SCALE = 1.4826


def volume_bands(
    daily: pd.DataFrame,
    first: dt.date,
    last: dt.date,
    window_days: int,
    band_mads: float,
    min_history: int,
) -> pd.DataFrame:
    """Each run day's volume against the median and scaled MAD of the `window_days` before
    it (days with too little history pass). A flat history (MAD 0) allows 10 % either way."""
    columns = ["source_id", "date", "volume", "median", "scaled_mad", "low", "high"]
    if daily.empty:
        return pd.DataFrame(columns=[*columns, "within_band"])
    daily = daily.assign(date=pd.to_datetime(daily["date"]), volume=daily["volume"].astype(float))
    window = f"{window_days}D"
    parts = []
    for source_id, series in daily.groupby("source_id"):
        volume = series.set_index("date")["volume"].sort_index()
        # The `window_days` before each day (the day itself excluded).
        trailing = volume.rolling(window, closed="left")
        count = trailing.count()
        median = trailing.median()
        mad = trailing.apply(lambda h: np.median(np.abs(h - np.median(h))), raw=True)
        parts.append(
            pd.DataFrame(
                {
                    "source_id": source_id,
                    "date": volume.index,
                    "volume": volume.to_numpy(),
                    "median": median.to_numpy(),
                    "scaled_mad": (_MAD_SCALE * mad).to_numpy(),
                    "count": count.to_numpy(),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["date"].between(pd.Timestamp(first), pd.Timestamp(last))]
    # A flat history (MAD 0) allows 10 % either way.
    half = (band_mads * frame["scaled_mad"]).where(
        frame["scaled_mad"] > 0, 0.1 * frame["median"].abs()
    )
    frame = frame.assign(low=frame["median"] - half, high=frame["median"] + half)
    judged = frame["count"] >= min_history
    inside = frame["volume"].between(frame["low"], frame["high"])
    frame = frame.assign(within_band=~judged | inside)
    return frame[[*columns, "within_band"]].reset_index(drop=True)


def quarantine_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Share of each day's rows that went to quarantine."""
    total = counts["loaded"].astype(float) + counts["quarantined"].astype(float)
    return counts.assign(
        quarantine_rate=counts["quarantined"].astype(float) / total.where(total > 0)
    )


def snapshot_changes(ledger: pd.DataFrame) -> pd.DataFrame:
    """Whether each run's snapshot rows still count and sum as they did when written. A sum
    rebuilt from versions added and subtracted may round by about 1e-16 of the magnitudes
    it went through (`scale_now`): 1e-12 of them is allowed, on top of float noise."""
    written = ledger["written_sum"].astype(float)
    scale = ledger["scale_now"].astype(float) if "scale_now" in ledger else 0.0
    allowed = 1e-9 + 1e-12 * (written.abs() + scale)
    unchanged = (ledger["rows_now"] == ledger["written_rows"]) & (
        (ledger["sum_now"].astype(float) - written).abs() <= allowed
    )
    return ledger.assign(unchanged=unchanged)


def _window_params(window: RunWindow) -> dict:
    return {
        "first": window.first,
        "last": window.last,
        "history_start": window.history_start,
        "today": window.today,
    }
