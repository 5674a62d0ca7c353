"""Dagster entry point: `dagster dev -w workspace.yaml` and the CLI both load `defs` from here."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from kpi_pipeline.defs.alerts_assets import (
    alert_channels_resource,
    build_alert_assets,
    build_alert_sensors,
)
from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.jobs import build_daily_job, build_daily_schedule, executor_for
from kpi_pipeline.defs.partitions import daily_partitions
from kpi_pipeline.defs.plan_assets import build_plan_assets
from kpi_pipeline.defs.report_assets import build_report_assets
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.defs.scoring_assets import build_scoring_assets
from kpi_pipeline.defs.sources.csv_assets import build_csv_assets
from kpi_pipeline.defs.sources.email_assets import build_email_assets, build_email_resources
from kpi_pipeline.defs.sources.ga4_assets import build_ga4_assets, build_ga4_resources
from kpi_pipeline.defs.sources.session_csv_assets import build_session_csv_assets
from kpi_pipeline.defs.sql_assets import build_sql_model_assets
from kpi_pipeline.package_data import example_plan, sql_models_root
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.reports.html.location import REPORT_DIR_ENV, report_dir
from kpi_pipeline.warehouse.sql_models import discover_models

# Shipped inside the package: found the same way from a wheel and from a source checkout.
DEFAULT_PLAN = example_plan("demo.yaml")
SQL_MODELS_ROOT = sql_models_root()


def build_definitions(
    plan_path: str | Path | None = None, warehouse_url: str | None = None
) -> dg.Definitions:
    """Definitions for one plan. Environment is read here, never at import time.

    `KPI_PLAN` names the plan file (default: the demo plan); `KPI_WAREHOUSE_URL` the
    warehouse, passed as a `dg.EnvVar` so a password in it never reaches the UI.
    `KPI_GA4_ENDPOINT` (loopback only) points GA4 clients at a local fake server.
    """
    loaded = load_plan(plan_path or os.environ.get("KPI_PLAN") or DEFAULT_PLAN)
    partitions = daily_partitions(loaded.plan)
    # Every table of this plan lives in its own schemas (`<plan id>_raw`, ...).
    if warehouse_url is not None:
        warehouse = WarehouseResource(url=warehouse_url, plan_id=loaded.plan_id)
    elif os.environ.get("KPI_WAREHOUSE_URL"):
        warehouse = WarehouseResource(url=dg.EnvVar("KPI_WAREHOUSE_URL"), plan_id=loaded.plan_id)
    else:
        warehouse = WarehouseResource(plan_id=loaded.plan_id)
    job = build_daily_job(partitions)
    models = discover_models(SQL_MODELS_ROOT)
    url = warehouse_url or os.environ.get("KPI_WAREHOUSE_URL") or WarehouseResource().url
    checks = AssetChecks(loaded, models)
    return dg.Definitions(
        assets=[
            *build_plan_assets(loaded),
            *build_csv_assets(loaded, partitions, checks),
            *build_ga4_assets(loaded, partitions, checks),
            *build_email_assets(loaded, partitions, checks),
            *build_session_csv_assets(loaded, partitions, checks),
            *build_sql_model_assets(models, checks),
            *build_scoring_assets(loaded, checks, models),
            *build_alert_assets(loaded),
            # The HTML report: $KPI_REPORT_DIR, else reports/ beside a DuckDB warehouse file.
            *build_report_assets(
                loaded,
                report_dir(url, os.environ.get(REPORT_DIR_ENV)),
            ),
        ],
        jobs=[job],
        schedules=[build_daily_schedule(job)],
        sensors=build_alert_sensors(loaded),
        resources={
            "warehouse": warehouse,
            # Slack and SMTP settings as EnvVars, for the channels whose variables are set.
            "alert_channels": alert_channels_resource(loaded.plan.alerts),
            **build_ga4_resources(loaded, os.environ.get("KPI_GA4_ENDPOINT")),
            # One per declared email source, its API key as a dg.EnvVar.
            **build_email_resources(loaded),
        },
        # DuckDB: one process (single writer); PostgreSQL: multiprocess (sources in parallel).
        executor=executor_for(url),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
