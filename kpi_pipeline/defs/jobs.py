"""The daily job (every asset, one partition or a range in one run) and its schedule."""

import dagster as dg
from sqlalchemy.engine import make_url

DAILY_JOB_NAME = "daily_kpis"
# At most this many steps at once under the multiprocess executor (the sources are the steps
# worth running together). Step processes fork from a server that imported the pipeline once,
# instead of each paying Dagster's, pandas' and the pipeline's imports again (seconds each).
MAX_CONCURRENT_STEPS = 4
PRELOADED_MODULES = ["kpi_pipeline.runs"]


def executor_for(warehouse_url: str) -> dg.ExecutorDefinition:
    """DuckDB has a single writer: its steps run one after another in one process. PostgreSQL
    takes concurrent writers, so runs the Dagster daemon or UI launches use the multiprocess
    executor (independent sources extracted in parallel). `kpi-pipeline run` executes in
    process whatever the executor (`execute_in_process`)."""
    if make_url(warehouse_url).get_backend_name() in ("postgresql", "postgres"):
        return dg.multiprocess_executor.configured(
            {
                "max_concurrent": MAX_CONCURRENT_STEPS,
                "start_method": {"forkserver": {"preload_modules": PRELOADED_MODULES}},
            }
        )
    return dg.in_process_executor


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
