"""The plan written as small tables (KPIs, tactic rules, calendar) for the SQL models."""

import datetime as dt

import dagster as dg

from kpi_pipeline.checks.results import CHECK_FLAGS
from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.partitions import failure
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.loading.coverage import SOURCE_DAYS
from kpi_pipeline.loading.errors import LoadError
from kpi_pipeline.loading.plans import record_plan_run
from kpi_pipeline.metrics.plan_tables import PLAN_TABLES, plan_tables
from kpi_pipeline.plan.loader import LoadedPlan


def build_plan_assets(loaded: LoadedPlan) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            table_key(spec),
            group_name="plan",
            kinds={"yaml", "pandas"},
            description=f"The plan's {spec.name.replace('_', ' ')}: {spec.grain}.",
            metadata={"grain": spec.grain, "plan_file": str(loaded.path)},
        )
        for spec in PLAN_TABLES
    ]

    @dg.multi_asset(name="plan_tables", specs=specs)
    def plan_tables_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Rewrite every plan table together, so SQL never sees half of a plan change."""
        today = dt.datetime.now(loaded.plan.zone).date()
        frames = plan_tables(loaded.plan, calendar_through=today)
        wh = warehouse.get()
        try:
            record_plan_run(wh, loaded, context.run_id, dt.datetime.now(dt.UTC))
        except LoadError as exc:
            raise failure(exc) from None
        # Tables every plan's SQL models read, whatever its sources (and before its checks).
        for spec in (*PLAN_TABLES, SOURCE_DAYS, CHECK_FLAGS):
            wh.ensure_table(spec)
        with wh.transaction() as conn:
            for spec in PLAN_TABLES:
                wh.replace_all(conn, spec, frames[spec.name])
        for spec in PLAN_TABLES:
            yield dg.MaterializeResult(
                asset_key=table_key(spec),
                metadata={
                    "dagster/row_count": len(frames[spec.name]),
                    "plan_id": loaded.plan_id,
                    "plan_hash": loaded.plan_hash,
                    "schema": wh.schema_name(spec.schema),
                },
            )

    return [plan_tables_asset]
