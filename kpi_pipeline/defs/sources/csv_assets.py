"""Raw tables loaded from the plan's CSV exports, one day partition (or range) at a time."""

import dagster as dg

from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import PLAN_SOURCES_KEY, table_key
from kpi_pipeline.defs.partitions import failure, run_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.defs.sources.file_metadata import file_load_metadata, unreadable_file
from kpi_pipeline.defs.sources.partition_rows import add_rows_per_day, warehouse_rows_by_day
from kpi_pipeline.loading.errors import LoadError
from kpi_pipeline.loading.files import load_file_sources
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.sources.csv_export import CSV_EVENTS, CSV_TRAFFIC


def build_csv_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition, checks: AssetChecks
) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            table_key(CSV_TRAFFIC),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"csv", "pandas"},
            description="Daily sessions, engaged sessions and key events from the CSV exports.",
            metadata={"grain": CSV_TRAFFIC.grain},
        ),
        dg.AssetSpec(
            table_key(CSV_EVENTS),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"csv", "pandas"},
            description="Daily event counts by event name (e.g. form starts and submits).",
            metadata={"grain": CSV_EVENTS.grain},
        ),
    ]

    @dg.multi_asset(
        name="csv_exports",
        specs=specs,
        check_specs=checks.specs(*(spec.key for spec in specs)),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def csv_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Replace the days read from every CSV source in one transaction; bad rows quarantined."""
        run = run_days(context, loaded)
        try:
            loads = load_file_sources(warehouse.get(), loaded.plan.sources.csv_exports, run)
        except LoadError as exc:
            raise failure(exc) from None
        except OSError as exc:  # a file the glob matched that cannot be opened
            raise unreadable_file(exc) from None
        common = file_load_metadata(context, loads, run)
        source_ids = [load.source_id for load in loads]
        for spec in (CSV_TRAFFIC, CSV_EVENTS):
            by_day = warehouse_rows_by_day(warehouse.get(), spec, source_ids, run.first, run.last)
            rows = add_rows_per_day(context, table_key(spec), by_day)
            yield dg.MaterializeResult(
                asset_key=table_key(spec), metadata={**common, "rows_in_run": rows}
            )
        yield from checks.evaluate(context, warehouse.get(), *(spec.key for spec in specs))

    return [csv_exports]
