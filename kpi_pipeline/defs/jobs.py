"""The daily job (every asset, one partition or a range in one run) and its schedule."""

import dagster as dg

DAILY_JOB_NAME = "daily_kpis"


def build_daily_job(partitions: dg.PartitionsDefinition):
    return dg.define_asset_job(
        DAILY_JOB_NAME,
        selection=dg.AssetSelection.all(),
        partitions_def=partitions,
        description="Load the day's sources, rebuild the KPI models, score and snapshot them.",
    )


def build_daily_schedule(job) -> dg.ScheduleDefinition:
    # 06:00 in the plan's timezone, for yesterday's partition: GA4 and its exports settle
    # overnight, and the partition definition already lags one day behind "now".
    return dg.build_schedule_from_partitioned_job(job, hour_of_day=6, minute_of_hour=0)
