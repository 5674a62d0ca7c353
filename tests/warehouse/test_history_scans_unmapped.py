"""The UTM -> tactic mapping and the unmapped traffic list cost a daily run no scan of every
measure row of history, and an incremental run still gives them as a full refresh does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlglot
from sqlglot import exp

from kpi_pipeline.definitions import SQL_MODELS_ROOT
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.warehouse.engine import read_frame_once
from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG
from kpi_pipeline.warehouse.sql_models import discover_models, render_model

MARKER = "incremental_filter_marker"
# Per-day summaries read whole on purpose: one row per day and UTM combination (about a
# dozen a day), not one per source row, device and measure as int_measures_unioned has.
SMALL_DAILY = {"int_traffic_sources_daily"}


def _unfiltered_reads() -> set[tuple[str, str]]:
    """(model, incremental model it reads) where the reading SELECT has no incremental filter."""
    models = discover_models(SQL_MODELS_ROOT)
    incremental = {m.name for m in models if m.materialized == "incremental"}
    layer_of = {m.name: m.layer for m in models}
    found = set()
    for model in models:
        if model.layer == "staging":
            continue
        sql = render_model(model, layer_of, "duckdb", incremental=lambda *_: MARKER)
        for table in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Table):
            if table.name not in incremental:
                continue
            select = table.find_ancestor(exp.Select)
            where = select.args.get("where") if select is not None else None
            if where is None or MARKER not in where.sql():
                found.add((model.name, table.name))
    return found


def test_no_model_reads_a_daily_model_whole_but_the_small_summary():
    unfiltered = _unfiltered_reads()
    assert {read for read in unfiltered if read[1] not in SMALL_DAILY} == set()
    # The two models that used to read every measure row of history read the summary.
    assert unfiltered == {
        ("int_traffic_sources_mapped_to_tactics", "int_traffic_sources_daily"),
        ("unmapped_traffic", "int_traffic_sources_daily"),
    }


PLAN = """\
id: unmapped_scan
organization: Tiny Shop
mission: Sell a few things.
timezone: America/Toronto
currency: CAD
history_start: 2026-01-05
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
objectives:
  - id: sell
    title: Sell more
    priority: 1
    deadline: 2026-12-31
    strategies:
      - id: reach
        title: Reach people
        tactics:
          - {id: email_news, channel: email, match: [{source: newsletter, medium: email}]}
    kpis:
      - id: conv
        label: Conversion rate
        kind: conversion_rate
        baseline: {value: 0.01, as_of: 2026-01-01}
        target: {value: 0.03, by: 2026-12-31}
        grains: [week]
        segments: [tactic]
"""
HEADER = "date,source,medium,campaign,landing_page,device,sessions,engaged_sessions,key_events"
CLAIMED = "newsletter,email,jan_promo,/,desktop,100,60,10"
DAYS = [dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)]
TABLES = [
    ("intermediate", "int_traffic_sources_daily"),
    ("intermediate", "int_traffic_sources_mapped_to_tactics"),
    ("marts", "unmapped_traffic"),
]


def _write(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def _build_of(result, asset: str) -> str:
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            if materialization.asset_key.path[-1] == asset:
                return str(materialization.metadata["build"].value)
    raise AssertionError(f"{asset} was not materialized")


def _snapshot(url: str, plan_id: str) -> dict[tuple[str, str], pd.DataFrame]:
    frames = {}
    for schema, name in TABLES:
        frame = read_frame_once(url, f"select * from {schema}.{name}", plan_id=plan_id)
        frame = frame.sort_values(list(frame.columns), na_position="first", kind="stable")
        frames[(schema, name)] = frame.reset_index(drop=True)
    return frames


def test_a_revised_day_moves_first_seen_and_drops_a_vanished_campaign(tmp_path, warehouse_url):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(PLAN, encoding="utf-8")
    plan_id = load_plan(plan_path).plan_id
    exports = tmp_path / "exports"
    exports.mkdir()
    day1, day2, day3 = (d.isoformat() for d in DAYS)
    # google / organic / seo every day; a one-off unclaimed campaign on the first day only.
    _write(
        exports / "2026-01.csv",
        [
            f"{day1},{CLAIMED}",
            f"{day1},google,organic,seo,/,mobile,500,200,5",
            f"{day1},Promo_Blast,Email,Spring_Sale,/,desktop,40,20,3",
            f"{day2},{CLAIMED}",
            f"{day2},google,organic,seo,/,mobile,300,100,2",
            f"{day3},{CLAIMED}",
            f"{day3},google,organic,seo,/,desktop,200,90,1",
        ],
    )
    first = run_days(plan_path, DAYS[0], DAYS[-1], warehouse_url=warehouse_url)
    assert first.success, step_failures(first)

    # The first day revised: neither the one-off campaign nor organic traffic that day.
    _write(
        exports / "2026-01.csv",
        [
            f"{day1},{CLAIMED}",
            f"{day2},{CLAIMED}",
            f"{day2},google,organic,seo,/,mobile,300,100,2",
            f"{day3},{CLAIMED}",
            f"{day3},google,organic,seo,/,desktop,200,90,1",
        ],
    )
    revised = run_days(plan_path, DAYS[0], DAYS[0], warehouse_url=warehouse_url)
    assert revised.success, step_failures(revised)
    assert _build_of(revised, "int_traffic_sources_daily") == "incremental"
    incremental = _snapshot(warehouse_url, plan_id)

    unmapped = incremental[("marts", "unmapped_traffic")].set_index(
        ["source", "medium", "campaign"]
    )
    assert list(unmapped.index) == [("google", "organic", "seo")]
    organic = unmapped.loc[("google", "organic", "seo")]
    assert (organic.sessions, organic.key_events) == (500.0, 3.0)
    assert pd.Timestamp(organic.first_seen).date() == DAYS[1]
    assert pd.Timestamp(organic.last_seen).date() == DAYS[2]
    assert organic[["emails_sent", "emails_delivered", "email_unique_clicks"]].isna().all()
    mapped = incremental[("intermediate", "int_traffic_sources_mapped_to_tactics")]
    assert "promo_blast" not in set(mapped["source"])

    full = run_days(
        plan_path,
        DAYS[0],
        DAYS[0],
        warehouse_url=warehouse_url,
        tags={FULL_REFRESH_TAG: "1"},
    )
    assert full.success, step_failures(full)
    assert _build_of(full, "int_traffic_sources_daily") == "full"
    refreshed = _snapshot(warehouse_url, plan_id)
    for table, frame in incremental.items():
        pd.testing.assert_frame_equal(
            frame, refreshed[table], check_exact=False, rtol=1e-12, obj=str(table)
        )
