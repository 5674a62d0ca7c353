"""Loading email platforms (Mailchimp, Klaviyo) into a plan's raw tables.

A run of days [D1, D2] re-reads campaigns sent in the `lookback_days` before D1 too: their
opens and clicks keep arriving for days after the send. Every source is read first, then
all their rows are replaced in one transaction, so a failed call leaves the previous data.
A send day that had campaigns and now reads none (a campaign deleted, an account switched)
keeps its rows and the run fails before writing, unless missing days are allowed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from kpi_pipeline.loading.commands import run_command
from kpi_pipeline.loading.context import RunDays
from kpi_pipeline.loading.coverage import SOURCE_DAYS, coverage_frame, rows_by_day
from kpi_pipeline.loading.errors import MissingDay, MissingDaysError
from kpi_pipeline.plan.email_config import EmailSource
from kpi_pipeline.plan.models import Plan
from kpi_pipeline.sources.email import (
    EMAIL_CAMPAIGNS,
    EMAIL_LIST_GROWTH,
    EMAIL_TABLES,
    EmailExtract,
)
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Days


@dataclass(frozen=True)
class EmailRead:
    source: EmailSource
    extract: EmailExtract
    start: dt.date  # first send day re-read (look-back included)


def email_start(source: EmailSource, plan: Plan, run: RunDays) -> dt.date:
    return max(plan.history_start, run.first - dt.timedelta(days=source.lookback_days))


def load_email_sources(wh: Warehouse, reads: Mapping[str, EmailRead], run: RunDays) -> dict:
    """Replace each source's days (look-back included) in one transaction; rows written."""
    for spec in (*EMAIL_TABLES, SOURCE_DAYS):
        wh.ensure_table(spec)
    missing: list[MissingDay] = []
    for read in reads.values():
        if run.allow_missing or read.source.allow_missing_days:
            continue
        days = Days(read.source.id, read.start, run.last)
        for spec, frame in (
            (EMAIL_CAMPAIGNS, read.extract.campaigns),
            (EMAIL_LIST_GROWTH, read.extract.list_growth),
        ):
            new = set(pd.to_datetime(frame["date"]).dt.date) if not frame.empty else set()
            with wh.engine.connect() as conn:
                existing = wh.count_rows(conn, spec, days, by="date")
            missing += [
                MissingDay(
                    read.source.id,
                    pd.Timestamp(day).date(),
                    count,
                    f"{read.source.platform} ({spec.name})",
                    "the platform returned nothing for a day it had rows for",
                )
                for day, count in sorted(existing.items())
                if pd.Timestamp(day).date() not in new
            ]
    if missing:
        raise MissingDaysError(
            missing, run_command(run.plan_path, run.first, run.last, allow_missing=True)
        )
    written: dict[str, dict[str, int]] = {}
    with wh.transaction() as conn:
        for source_id, read in reads.items():
            days = Days(source_id, read.start, run.last)
            written[source_id] = {
                EMAIL_CAMPAIGNS.name: wh.replace_rows(
                    conn, EMAIL_CAMPAIGNS, read.extract.campaigns, days
                ),
                EMAIL_LIST_GROWTH.name: wh.replace_rows(
                    conn, EMAIL_LIST_GROWTH, read.extract.list_growth, days
                ),
            }
            # Every send day of the window was asked for: days without a campaign count.
            covered = coverage_frame(
                source_id, days.dates, rows_by_day(read.extract.campaigns), dt.datetime.now(dt.UTC)
            )
            wh.replace_rows(conn, SOURCE_DAYS, covered, days)
    return written
