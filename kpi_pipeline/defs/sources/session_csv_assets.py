"""Raw sessions from session-level CSV files, one day partition (or range) at a time."""

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
from kpi_pipeline.sources.session_csv import SESSION_ROWS


def build_session_csv_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition, checks: AssetChecks
) -> list[dg.AssetsDefinition]:
    rows_spec = dg.AssetSpec(
        table_key(SESSION_ROWS),
        group_name="sources",
        deps=[PLAN_SOURCES_KEY],
        kinds={"csv", "pandas"},
        description="One row per visit from session-level CSV files, dated and flagged.",
        metadata={"grain": SESSION_ROWS.grain},
    )

    @dg.multi_asset(
        name="session_csvs",
        specs=[rows_spec],
        check_specs=checks.specs(rows_spec.key),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def session_csv_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Replace the days read from every session-level source in one transaction."""
        run = run_days(context, loaded)
        try:
            loads = load_file_sources(warehouse.get(), loaded.plan.sources.session_csvs, run)
        except LoadError as exc:
            raise failure(exc) from None
        except OSError as exc:  # a file the glob matched that cannot be opened
            raise unreadable_file(exc) from None
        source_ids = [load.source_id for load in loads]
        by_day = warehouse_rows_by_day(
            warehouse.get(), SESSION_ROWS, source_ids, run.first, run.last
        )
        rows = add_rows_per_day(context, rows_spec.key, by_day)
        yield dg.MaterializeResult(
            asset_key=rows_spec.key,
            metadata={**file_load_metadata(context, loads, run), "rows_in_run": rows},
        )
        yield from checks.evaluate(context, warehouse.get(), rows_spec.key)

    return [session_csv_rows]
