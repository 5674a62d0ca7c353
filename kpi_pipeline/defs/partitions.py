"""Daily partitions in the plan's timezone: a partition is one local day of data."""

import datetime as dt

import dagster as dg

from kpi_pipeline.loading.context import RunDays
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.plan.models import Plan

# Run tag set by `kpi-pipeline run --allow-missing`: days that read empty may be emptied.
ALLOW_MISSING_TAG = "kpi/allow_missing"


def daily_partitions(plan: Plan) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=plan.history_start.isoformat(), timezone=plan.timezone
    )


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last day of the run's partition range (one run covers a whole backfill)."""
    key_range = context.partition_key_range
    return dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end)


def run_days(context: dg.AssetExecutionContext, loaded: LoadedPlan) -> RunDays:
    """The run's days, plan and `--allow-missing`, as the loaders take them."""
    first, last = partition_days(context)
    return RunDays(
        plan_path=loaded.path,
        base_dir=loaded.base_dir,
        first=first,
        last=last,
        allow_missing=context.run.tags.get(ALLOW_MISSING_TAG) == "1",
    )


def failure(exc: Exception) -> dg.Failure:
    """A known loading failure as a Dagster failure: its message is the whole story."""
    return dg.Failure(description=str(exc), allow_retries=False)
