"""The data checks as data, without a warehouse: which suites each asset gets, the robust
volume bands, quarantine rates and snapshot ledger computed by hand, the rows the runner
names as failing, and that no SQL model or raw table ships without a blocking check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from checks_project import CSV_SOURCES, GA4_SOURCES, plan_text

from kpi_pipeline.checks import suites as suites_module
from kpi_pipeline.checks.gx_runner import (
    _failing,
    _inline,
    _resolve,
    _with_frame_limits,
    _with_limits,
)
from kpi_pipeline.checks.suites import (
    RunWindow,
    derived_suites,
    mart_suites,
    model_suites,
    quarantine_rates,
    raw_suites,
    snapshot_changes,
    volume_bands,
)
from kpi_pipeline.definitions import DEFAULT_PLAN, SQL_MODELS_ROOT, build_definitions
from kpi_pipeline.defs.check_assets import RAW_ASSET_TABLES, AssetChecks
from kpi_pipeline.lib.checks import (
    DATES_IN_HISTORY,
    ENGAGED_LE_SESSIONS,
    KEY_EVENTS_PLAUSIBLE,
    Expect,
    counts_non_negative,
)
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.plan.quality import DEFAULT_SEVERITIES, QualityConfig
from kpi_pipeline.sources.ga4.reports import GA4_PERIOD_USERS, GA4_TRAFFIC
from kpi_pipeline.warehouse.sql_models import discover_models

MODELS = discover_models(SQL_MODELS_ROOT)
D0 = dt.date(2026, 3, 2)
WINDOW = RunWindow(
    first=dt.date(2026, 1, 5),
    last=dt.date(2026, 1, 7),
    history_start=dt.date(2026, 1, 1),
    today=dt.date(2026, 1, 10),
)


def _day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def _daily(values: dict[str, list[float]]) -> pd.DataFrame:
    """Daily volumes per source, from D0 on."""
    return pd.DataFrame(
        [
            {"source_id": source, "date": _day(n), "volume": volume}
            for source, volumes in values.items()
            for n, volume in enumerate(volumes)
        ]
    )


def _bands(frame: pd.DataFrame) -> list[tuple]:
    return [
        (r.source_id, r.date.date(), r.volume, r.median, r.scaled_mad, r.low, r.high, r.within_band)
        for r in frame.itertuples()
    ]


# -- volume_bands ---------------------------------------------------------------------------


def test_a_flat_history_allows_ten_percent_either_way():
    daily = _daily({"export": [100] * 20 + [10, 105, 111]})

    bands = volume_bands(daily, _day(20), _day(22), window_days=28, band_mads=5, min_history=14)

    # Median 100 and MAD 0 each day (one outlier moves neither): a band of 90..110.
    assert _bands(bands) == [
        ("export", _day(20), 10.0, 100.0, 0.0, 90.0, 110.0, False),
        ("export", _day(21), 105.0, 100.0, 0.0, 90.0, 110.0, True),
        ("export", _day(22), 111.0, 100.0, 0.0, 90.0, 110.0, False),
    ]


def test_bands_are_the_trailing_median_and_scaled_mad():
    # Fourteen days alternating 90 and 110, then 20 and 30.
    daily = _daily({"export": [90, 110] * 7 + [20, 30]})

    bands = volume_bands(daily, _day(14), _day(15), window_days=28, band_mads=5, min_history=14)

    first, second = bands.to_dict("records")
    # Day 14: median 100, every deviation 10 -> MAD 10, scaled 14.826; +-5 x 14.826.
    assert first["median"] == 100.0
    assert first["scaled_mad"] == pytest.approx(14.826)
    assert (first["low"], first["high"]) == (pytest.approx(25.87), pytest.approx(174.13))
    assert (first["volume"], first["within_band"]) == (20.0, False)
    # Day 15: its 15 days (7 x 90, 7 x 110, 20) have median 90; deviations 7 x 0, 7 x 20
    # and 70 -> MAD 20, scaled 29.652: 30 is inside -58.26..238.26.
    assert second["median"] == 90.0
    assert second["scaled_mad"] == pytest.approx(29.652)
    assert (second["low"], second["high"]) == (pytest.approx(-58.26), pytest.approx(238.26))
    assert (second["volume"], second["within_band"]) == (30.0, True)


def test_days_with_too_little_history_pass():
    daily = _daily({"export": [100] * 13 + [0]})

    bands = volume_bands(daily, _day(0), _day(13), window_days=28, band_mads=5, min_history=14)

    assert bands["within_band"].tolist() == [True] * 14
    # Day 0 has no history at all; day 13 has 13 days (median 100, a band it misses).
    assert np.isnan(bands["median"].iloc[0])
    assert _bands(bands.tail(1)) == [("export", _day(13), 0.0, 100.0, 0.0, 90.0, 110.0, True)]


def test_the_trailing_window_forgets_older_days():
    # A week of 1000 then a week of 100: with a 7-day window only the 100s count.
    daily = _daily({"export": [1000] * 7 + [100] * 7 + [1000]})

    narrow = volume_bands(daily, _day(14), _day(14), window_days=7, band_mads=5, min_history=3)
    wide = volume_bands(daily, _day(14), _day(14), window_days=28, band_mads=5, min_history=3)

    assert _bands(narrow) == [("export", _day(14), 1000.0, 100.0, 0.0, 90.0, 110.0, False)]
    # Over 14 days the median is 550 and the MAD 450: 1000 is well inside.
    assert (wide["median"].iloc[0], wide["within_band"].iloc[0]) == (550.0, True)


def test_each_source_has_its_own_band_and_only_run_days_are_returned():
    daily = _daily({"b": [10] * 15 + [100], "a": [100] * 15 + [100]})

    bands = volume_bands(daily, _day(15), _day(15), window_days=28, band_mads=5, min_history=14)

    assert _bands(bands) == [
        ("a", _day(15), 100.0, 100.0, 0.0, 90.0, 110.0, True),
        ("b", _day(15), 100.0, 10.0, 0.0, 9.0, 11.0, False),
    ]


def test_no_volume_no_band():
    empty = pd.DataFrame(columns=["source_id", "date", "volume"])

    bands = volume_bands(empty, _day(0), _day(1), window_days=28, band_mads=5, min_history=14)

    assert bands.empty
    assert list(bands.columns) == [
        *("source_id", "date", "volume", "median", "scaled_mad", "low", "high", "within_band")
    ]


# -- quarantine_rates and snapshot_changes --------------------------------------------------


def test_quarantine_rate_is_the_share_of_a_days_rows_quarantined():
    counts = pd.DataFrame(
        {
            "source_id": ["export"] * 4,
            "date": [_day(n) for n in range(4)],
            "loaded": [2, 98, 5, 0],
            "quarantined": [2, 2, 0, 0],
        }
    )

    rates = quarantine_rates(counts)["quarantine_rate"].tolist()

    assert rates[:3] == [0.5, 0.02, 0.0]
    assert np.isnan(rates[3])  # no rows at all: no rate


def test_snapshot_changes_compare_counts_and_sums_as_written():
    ledger = pd.DataFrame(
        {
            "run_id": ["same", "row_lost", "value_changed", "float_noise", "tiny_change"],
            "written_rows": [10, 10, 10, 10, 10],
            "rows_now": [10, 9, 10, 10, 10],
            "written_sum": [5.5, 5.5, 5.5, 1e6, 0.0],
            "sum_now": [5.5, 5.5, 5.6, 1e6 + 1e-7, 1e-8],
        }
    )

    unchanged = snapshot_changes(ledger)["unchanged"].tolist()

    # Within 1e-12 relative (+1e-9 absolute) is float noise; 1e-8 on a zero sum is a change.
    assert unchanged == [True, False, False, True, False]


# -- suites, as declared ------------------------------------------------------------------


def test_every_model_gets_its_keys_unique_and_not_null():
    suites = model_suites(MODELS)

    assert [suite.asset for suite in suites] == [(m.layer, m.name) for m in MODELS]
    for model, suite in zip(MODELS, suites, strict=True):
        assert model.keys, f"{model.path} declares no keys"
        assert suite.query == f"select {', '.join(model.keys)} from {model.layer}.{model.name}"
        assert [(e.name, e.kind, e.columns) for e in suite.expectations] == [
            ("keys_unique", "unique", model.keys),
            ("keys_not_null", "not_null", model.keys),
        ]
        assert (suite.flag_columns, suite.derive, suite.params) == (None, None, {})


def test_raw_suites_check_the_run_days_and_rows_dated_outside_the_history():
    traffic, users = raw_suites([GA4_TRAFFIC, GA4_PERIOD_USERS], WINDOW)

    assert traffic.asset == ("raw", "ga4_traffic")
    # Each arm on (source_id, date): PostgreSQL reads it from the raw table's index.
    sources = "source_id = any(array((select source_id from plan.sources)))"
    assert traffic.query == (
        "select * from (with run_rows as materialized ("
        f"select * from raw.ga4_traffic where ({sources} and date between :first and :last) "
        f"or ({sources} and date < :history_start) or ({sources} and date > :today)"
        ") select * from run_rows) as run_rows"
    )
    assert traffic.params == {
        "first": dt.date(2026, 1, 5),
        "last": dt.date(2026, 1, 7),
        "history_start": dt.date(2026, 1, 1),
        "today": dt.date(2026, 1, 10),
    }
    assert traffic.flag_columns == ("source_id", "date")
    keys = GA4_TRAFFIC.keys
    assert list(traffic.expectations) == [
        Expect("keys_unique", "unique", keys, f"one row per {', '.join(keys)}"),
        Expect("keys_not_null", "not_null", keys, f"{', '.join(keys)} never null"),
        counts_non_negative("sessions", "engaged_sessions", "key_events"),
        ENGAGED_LE_SESSIONS,
        KEY_EVENTS_PLAUSIBLE,
        DATES_IN_HISTORY,
    ]
    # A table without a date is checked whole, and names no source day.
    assert users.query == "select * from raw.ga4_period_users"
    assert (users.params, users.flag_columns) == ({}, None)
    assert [e.name for e in users.expectations] == [
        "keys_unique",
        "keys_not_null",
        "counts_non_negative",
    ]


def test_a_raw_table_without_keys_gets_only_its_declared_checks():
    spec = TableSpec("raw", "t", (("x", "bigint"),), grain="g", checks=(counts_non_negative("x"),))

    (suite,) = raw_suites([spec], WINDOW)

    assert suite.expectations == (counts_non_negative("x"),)


# Both traffic kinds declared (GA4 feeds the KPIs): each gets its derived checks.
BOTH_SOURCES = CSV_SOURCES.replace(
    "sources:\n", "sources:\n  traffic_source: ga4\n"
) + GA4_SOURCES.removeprefix("sources:\n")


def _plan(tmp_path: Path, **kwargs):
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text(**kwargs), encoding="utf-8")
    return load_plan(path)


def test_derived_suites_per_source_kind(tmp_path):
    plan = _plan(tmp_path, sources=BOTH_SOURCES).plan

    suites = derived_suites(plan, WINDOW)

    assert [(s.asset, s.expectations[0].name) for s in suites] == [
        (("raw", "csv_traffic"), "freshness"),
        (("raw", "csv_traffic"), "volume_anomaly"),
        (("raw", "csv_traffic"), "quarantine_rate"),
        (("raw", "ga4_traffic"), "freshness"),
        (("raw", "ga4_traffic"), "volume_anomaly"),
    ]
    csv_fresh, volume, quarantine, ga4_fresh, _ = suites
    # Yesterday (9 January) less a day of lag.
    (fresh,) = csv_fresh.expectations
    assert (fresh.kind, fresh.columns, fresh.min_value) == ("between", ("last_day",), "2026-01-08")
    assert fresh.description == (
        "each source's last covered day is on or after 2026-01-08 (yesterday less 1 day(s) of lag)"
    )
    assert csv_fresh.params == {"kind": "csv_exports", "never": dt.date(2025, 12, 31)}
    assert ga4_fresh.params == {"kind": "ga4", "never": dt.date(2025, 12, 31)}
    assert csv_fresh.flag_columns is None  # staleness names no day

    assert volume.query == suites_module._daily_volume("csv_exports")
    # The 28 days before the run's first (5 January) are all a run day's band reads.
    assert volume.params == {
        "kind": "csv_exports",
        "since": dt.date(2025, 12, 8),
        "last": dt.date(2026, 1, 7),
    }
    assert volume.flag_columns == ("source_id", "date")
    assert volume.derive.func is volume_bands
    assert volume.derive.keywords == {
        "first": dt.date(2026, 1, 5),
        "last": dt.date(2026, 1, 7),
        "window_days": 28,
        "band_mads": 5.0,
        "min_history": 14,
    }
    assert volume.expectations[0].value_set == (True,)

    assert quarantine.derive is quarantine_rates
    assert quarantine.flag_columns == ("source_id", "date")
    assert quarantine.expectations[0].max_value == 0.05
    assert quarantine.params["first"] == dt.date(2026, 1, 5)


def test_the_plans_quality_section_tunes_the_derived_checks(tmp_path):
    quality = (
        "{freshness_lag_days: 3, volume_window_days: 14, volume_band_mads: 3, "
        "volume_min_history_days: 7, quarantine_rate_max: 0.1, severity: {freshness: error}}"
    )
    plan = _plan(tmp_path, quality=quality).plan

    fresh, volume, quarantine = derived_suites(plan, WINDOW)

    assert fresh.expectations[0].min_value == "2026-01-06"  # 9 January less 3 days
    assert volume.derive.keywords == {
        "first": dt.date(2026, 1, 5),
        "last": dt.date(2026, 1, 7),
        "window_days": 14,
        "band_mads": 3.0,
        "min_history": 7,
    }
    assert quarantine.expectations[0].max_value == 0.1
    assert plan.quality.severity_of("freshness") == "error"
    assert plan.quality.severity_of("volume_anomaly") == "warn"


def test_checks_can_be_turned_off(tmp_path):
    loaded = _plan(tmp_path, quality="{enabled: false}")

    checks = AssetChecks(loaded, MODELS)

    assert checks.checked_assets == []


def test_mart_suites():
    rates, periods, snapshots = mart_suites()

    assert [s.asset for s in (rates, periods, snapshots)] == [
        ("marts", "kpi_values"),
        ("marts", "kpi_values"),
        ("marts", "kpi_snapshots"),
    ]
    assert [e.name for e in rates.expectations] == [
        "rate_in_unit_interval",
        "numerator_le_denominator",
    ]
    unit = rates.expectations[0]
    assert (unit.kind, unit.columns, unit.min_value, unit.max_value) == (
        "between",
        ("value",),
        0,
        1,
    )
    assert [e.name for e in periods.expectations] == ["periods_complete"]
    assert [e.name for e in snapshots.expectations] == ["snapshots_append_only"]
    assert snapshots.derive is snapshot_changes


def test_every_check_has_a_default_severity(tmp_path):
    plan = _plan(tmp_path, sources=BOTH_SOURCES).plan
    names = {
        e.name
        for suite in (
            *raw_suites(list(RAW_ASSET_TABLES), WINDOW),
            *derived_suites(plan, WINDOW),
            *model_suites(MODELS),
            *mart_suites(),
        )
        for e in suite.expectations
    }

    assert names <= set(DEFAULT_SEVERITIES)
    config = QualityConfig(severity={"volume_anomaly": "error"})
    assert config.severity_of("volume_anomaly") == "error"
    assert config.severity_of("keys_unique") == "error"
    assert config.severity_of("quarantine_rate") == "warn"


def test_every_sql_model_and_raw_table_has_a_blocking_check():
    """New tables cannot ship without a check: every SQL model and every raw table of the
    demo plan's Definitions carries at least one asset check, and every check blocks."""
    defs = build_definitions(DEFAULT_PLAN, warehouse_url="duckdb:///:memory:")
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks_of: dict[str, set[str]] = {}
    for key in graph.asset_check_keys:
        checks_of.setdefault(key.asset_key.to_user_string(), set()).add(key.name)

    models = {f"{m.layer}/{m.name}" for m in MODELS}
    raw = {asset for asset in assets if asset.startswith("raw/")}
    assert models <= assets
    assert {"raw/csv_traffic", "raw/ga4_traffic", "raw/email_campaigns"} <= raw
    assert sorted(asset for asset in models | raw if not checks_of.get(asset)) == []
    assert all({"keys_unique", "keys_not_null"} <= checks_of[model] for model in models)
    assert [key for key in graph.asset_check_keys if not graph.get_check_spec(key).blocking] == []


# -- the runner's own logic on small frames -------------------------------------------------


def test_failing_rows_per_kind():
    frame = pd.DataFrame(
        {
            "k": [1, 1, 2, None],
            "day": [dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 1, 10), None],
            "rate": [-0.1, 0.0, 1.0, 1.5],
            "flag": [True, False, True, None],
        }
    )

    def failing(expect: Expect) -> list[bool]:
        return _failing(frame, expect).tolist()

    assert failing(Expect("u", "unique", ("k",), "")) == [True, True, False, False]
    assert failing(Expect("n", "not_null", ("k", "day"), "")) == [False, False, False, True]
    dates = Expect("d", "between", ("day",), "", min_value="2026-01-01", max_value="2026-01-09")
    assert failing(dates) == [True, False, True, False]  # a missing date is not_null's job
    assert failing(Expect("r", "between", ("rate",), "", min_value=0, max_value=1)) == [
        True,
        False,
        False,
        True,
    ]
    assert failing(Expect("s", "in_set", ("flag",), "", value_set=(True,))) == [
        False,
        True,
        False,
        True,
    ]


def test_failing_rows_of_a_le_b_use_the_factor():
    frame = pd.DataFrame({"sessions": [10, 10, 10], "engaged_sessions": [10, 11, 0]})
    frame["key_events"] = [100.0, 101.0, 5.0]
    plausible = _resolve(KEY_EVENTS_PLAUSIBLE, {"events_per_session_max": 10.0})

    limited = _with_frame_limits(frame, [ENGAGED_LE_SESSIONS, plausible])

    assert _failing(limited, ENGAGED_LE_SESSIONS).tolist() == [False, True, False]
    assert _failing(limited, plausible).tolist() == [False, True, False]


def test_limit_columns_of_checks_on_the_same_column_do_not_collide():
    """engaged <= sessions and key events <= 10 x sessions both scale `sessions`: each needs
    its own limit column, in SQL as in frames."""
    plausible = _resolve(KEY_EVENTS_PLAUSIBLE, {"events_per_session_max": 10.0})

    sql = _with_limits("select * from t", [ENGAGED_LE_SESSIONS, plausible])

    aliases = [part.rsplit(" as ", 1)[1] for part in sql.split(" from (")[0].split(", ")[1:]]
    assert len(aliases) == 2 and len(set(aliases)) == 2, sql
    assert "q.sessions * 1.0 as " in sql and "q.sessions * 10.0 as " in sql


def test_inline_writes_parameters_as_literals():
    sql = (
        "select x::date from t where d between :first and :last and kind = :kind "
        "and n < :limit and y = cast(:never as date)"
    )
    params = {
        "first": dt.date(2026, 1, 5),
        "last": dt.date(2026, 1, 7),
        "kind": "csv_exports",
        "limit": 0.5,
        "never": dt.date(2025, 12, 31),
    }

    assert _inline(sql, params) == (
        "select x::date from t where d between date '2026-01-05' and date '2026-01-07' "
        "and kind = 'csv_exports' and n < 0.5 and y = cast(date '2025-12-31' as date)"
    )


@pytest.mark.parametrize("value", ["it's", "Upper", True, None])
def test_inline_refuses_what_would_need_escaping(value):
    with pytest.raises(ValueError, match="cannot inline parameter p="):
        _inline("select :p", {"p": value})


def test_model_key_checks_read_only_the_rows_a_run_can_have_changed():
    """A model keyed by day (or by grain and period) is re-checked on the days (periods) the
    run recomputed, or on its own days before the run's scope exists; other models whole."""
    models = {m.name: m for m in MODELS}
    chosen = [
        models["int_kpi_measures_daily"],
        models["kpi_values"],
        models["int_traffic_sources_mapped_to_tactics"],
    ]
    window = RunWindow(
        dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2025, 6, 1), dt.date(2026, 1, 7)
    )
    daily, values, mapping = model_suites(chosen, "incremental", window)
    assert daily.query.endswith(
        " where date in (select date from intermediate.incremental_run_days)) "
        "select * from run_rows) as run_rows"
    )
    assert values.query.endswith(
        " where exists (select 1 from intermediate.incremental_run_periods as p where "
        "p.affected_grain = grain and p.affected_period_start = period_start)) "
        "select * from run_rows) as run_rows"
    )
    assert " where " not in mapping.query
    daily, values, mapping = model_suites(chosen, "window", window)
    assert daily.query.endswith(
        " where (date between :first and :last) or date < :history_start or date > :today) "
        "select * from run_rows) as run_rows"
    )
    assert daily.params["first"] == dt.date(2026, 1, 5)
    assert " where " not in values.query and " where " not in mapping.query
    assert all(" where " not in s.query for s in model_suites(chosen, "all", window))
