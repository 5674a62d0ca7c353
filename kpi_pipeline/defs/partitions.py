"""Daily partitions in the plan's timezone: a partition is one local day of data."""

import datetime as dt

import dagster as dg

from kpi_pipeline.plan.models import Plan

# Where clauses replacing a run's days of one source (binds :source_id, :first_day, :last_day).
SOURCE_DAYS = "source_id = :source_id and date between :first_day and :last_day"
# Its quarantined rows of those days, and its undated ones (re-derived from the files each run).
SOURCE_QUARANTINE_DAYS = (
    "source_id = :source_id and "
    "(partition_date between :first_day and :last_day or partition_date is null)"
)


def daily_partitions(plan: Plan) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=plan.history_start.isoformat(), timezone=plan.timezone
    )


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last day of the run's partition range (one run covers a whole backfill)."""
    key_range = context.partition_key_range
    return dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end)
