"""What the report reads from the warehouse: the scored marts and the data-health tables.

The only module of the report that runs SQL. Everything after it (model, charts, page) is a
pure function of the frames read here, so tests can build reports from hand-made frames.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from kpi_pipeline.metrics.rollup import objective_statuses, rank_tactics
from kpi_pipeline.metrics.score_columns import REPORT_COLUMNS
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.warehouse.engine import Warehouse

# The `kpi_scores` columns the report shows and embeds (whole-site rows, `segment_type`
# 'all'); the embedded data is compared with the table by the tests.
SCORE_COLUMNS = REPORT_COLUMNS
DATE_COLUMNS = ("period_start", "period_end", "as_of_date")

# Rows of the data-health lists: enough to act on, few enough to read.
TOP_ROWS = 10


class NoScoresError(LookupError):
    """The plan has no `kpi_scores` table (or no snapshot as of the day asked) yet."""


@dataclass(frozen=True)
class ReportFrames:
    """Everything one report shows, as read from one plan's schemas."""

    scores: pd.DataFrame  # kpi_scores, whole site, SCORE_COLUMNS
    objectives: pd.DataFrame  # objective_status
    tactics: pd.DataFrame  # tactic_ranking
    to_date: pd.DataFrame  # kpi_period_to_date, whole site
    source_days: pd.DataFrame  # per source: first / last loaded day, days, rows
    quarantine: pd.DataFrame  # per source and reason: rows quarantined, last day
    quarantined_rows: int
    unmapped: pd.DataFrame  # unmapped_traffic, most sessions first
    failed_checks: pd.DataFrame  # latest result of each check, failing only
    as_of: dt.date  # the last loaded day the scores were computed on
    snapshot_run: str | None = None  # the run whose snapshot was read (`--as-of`)


def read_report_frames(warehouse: Warehouse, plan: Plan, as_of: dt.date | None) -> ReportFrames:
    """The report's frames: current marts, or with `as_of` the latest snapshot whose data
    ran to `as_of` at most (objective roll-up and tactic ranking recomputed from it, by the
    same functions that build the marts; period-to-date is current only, so left out).

    Raises NoScoresError when there is nothing to report.
    """
    if not warehouse.table_exists("marts", "kpi_scores"):
        raise NoScoresError("no kpi_scores table")
    snapshot_run = None
    if as_of is None:
        scores = _scores(warehouse, f"select * from {warehouse.relation('marts', 'kpi_scores')}")
        objectives = _optional(warehouse, "objective_status")
        tactics = _optional(warehouse, "tactic_ranking")
        to_date = _optional(warehouse, "kpi_period_to_date")
    else:
        snapshot_run, scores = _snapshot_scores(warehouse, as_of)
        objectives = objective_statuses(scores, plan)
        directions = {k.id: k.direction.value for _, k in plan.iter_kpis()}
        owners = {k.id: o.id for o, k in plan.iter_kpis()}
        tactics = rank_tactics(scores, directions, owners)
        to_date = pd.DataFrame()
    whole = scores[scores["segment_type"] == "all"]
    if whole.empty:
        raise NoScoresError("kpi_scores has no rows")
    if not to_date.empty:
        to_date = to_date[to_date["segment_type"] == "all"].reset_index(drop=True)
    quarantine, quarantined = _quarantine(warehouse)
    return ReportFrames(
        scores=whole[list(SCORE_COLUMNS)].reset_index(drop=True),
        objectives=objectives,
        tactics=tactics,
        to_date=to_date,
        source_days=_source_days(warehouse),
        quarantine=quarantine,
        quarantined_rows=quarantined,
        unmapped=_unmapped(warehouse),
        failed_checks=_failed_checks(warehouse),
        as_of=max(whole["as_of_date"]),
        snapshot_run=snapshot_run,
    )


def _scores(warehouse: Warehouse, sql: str, params: dict | None = None) -> pd.DataFrame:
    frame = warehouse.read_frame(sql, params)
    for column in DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["is_partial"] = frame["is_partial"].astype(bool)
    return frame


def _snapshot_scores(warehouse: Warehouse, as_of: dt.date) -> tuple[str, pd.DataFrame]:
    if not warehouse.table_exists("marts", "kpi_snapshots"):
        raise NoScoresError("no kpi_snapshots table")
    snapshots = warehouse.relation("marts", "kpi_snapshots")
    runs = warehouse.read_frame(
        f"select run_id, max(as_of_date) as data_to, max(computed_at) as computed_at "
        f"from {snapshots} group by run_id having max(as_of_date) <= :as_of "
        f"order by data_to desc, computed_at desc",
        {"as_of": as_of},
    )
    if runs.empty:
        raise NoScoresError(f"no snapshot with data up to {as_of}")
    run_id = str(runs["run_id"].iloc[0])
    scores = _scores(warehouse, f"select * from {snapshots} where run_id = :run", {"run": run_id})
    return run_id, scores


def _optional(warehouse: Warehouse, name: str, schema: str = "marts") -> pd.DataFrame:
    if not warehouse.table_exists(schema, name):
        return pd.DataFrame()
    return warehouse.read_frame(f"select * from {warehouse.relation(schema, name)}")


def _source_days(warehouse: Warehouse) -> pd.DataFrame:
    if not warehouse.table_exists("raw", "source_days"):
        return pd.DataFrame(columns=["source_id", "first_day", "last_day", "days", "rows"])
    return warehouse.read_frame(
        f"select source_id, min(date) as first_day, max(date) as last_day, "
        f"count(*) as days, sum(row_count) as rows "
        f"from {warehouse.relation('raw', 'source_days')} group by source_id order by source_id"
    )


def _quarantine(warehouse: Warehouse) -> tuple[pd.DataFrame, int]:
    columns = ["source_id", "reason", "rows", "last_day"]
    if not warehouse.table_exists("raw", "quarantine"):
        return pd.DataFrame(columns=columns), 0
    relation = warehouse.relation("raw", "quarantine")
    total = warehouse.read_frame(f"select count(*) as n from {relation}")["n"].iloc[0]
    # Reasons quote the offending text ("not a number: 'n/a'"): grouped by their first words.
    frame = warehouse.read_frame(
        f"select source_id, reason, partition_date from {relation}"
    ).assign(reason=lambda f: f["reason"].str.split(":").str[0])
    grouped = (
        frame.groupby(["source_id", "reason"], dropna=False)
        .agg(rows=("reason", "size"), last_day=("partition_date", "max"))
        .reset_index()
        .sort_values(["rows", "source_id"], ascending=[False, True], kind="stable")
    )
    return grouped.head(TOP_ROWS).reset_index(drop=True), int(total)


def _unmapped(warehouse: Warehouse) -> pd.DataFrame:
    if not warehouse.table_exists("marts", "unmapped_traffic"):
        return pd.DataFrame(columns=["source", "medium", "campaign", "sessions"])
    return warehouse.read_frame(
        f"select source, medium, campaign, sessions, key_events, first_seen, last_seen "
        f"from {warehouse.relation('marts', 'unmapped_traffic')} "
        f"order by sessions desc nulls last, source, medium, campaign limit {TOP_ROWS}"
    )


def _failed_checks(warehouse: Warehouse) -> pd.DataFrame:
    columns = ["asset", "check_name", "severity", "observed_value", "description", "checked_at"]
    if not warehouse.table_exists("marts", "check_results"):
        return pd.DataFrame(columns=columns)
    # Each check's latest result: a failure fixed by a later run is no longer news.
    return warehouse.read_frame(
        f"""
        with latest as (
            select *, row_number() over (
                partition by asset, check_name order by checked_at desc
            ) as recency
            from {warehouse.relation("marts", "check_results")}
        )
        select {", ".join(columns)} from latest
        where recency = 1 and not passed
        order by severity, asset, check_name
        """
    )
