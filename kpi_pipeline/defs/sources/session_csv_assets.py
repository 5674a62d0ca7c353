"""Raw sessions from session-level CSV files, one day partition (or range) at a time."""

import dagster as dg

from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.partitions import SOURCE_DAYS, SOURCE_QUARANTINE_DAYS, partition_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.sources.quarantine import QUARANTINE
from kpi_pipeline.sources.session_csv import SESSION_ROWS, read_session_csvs


def build_session_csv_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    rows_spec = dg.AssetSpec(
        table_key(SESSION_ROWS),
        group_name="sources",
        kinds={"csv", "pandas"},
        description="One row per visit from session-level CSV files, dated and flagged.",
        metadata={"grain": SESSION_ROWS.grain},
    )

    @dg.multi_asset(
        name="session_csvs",
        specs=[rows_spec],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def session_csv_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Replace the run's days of every session-level source in one transaction."""
        first_day, last_day = partition_days(context)
        extracts = {
            source.id: read_session_csvs(source, loaded.base_dir, first_day, last_day)
            for source in loaded.plan.sources.session_csvs
        }
        wh = warehouse.get()
        for table in (SESSION_ROWS, QUARANTINE):
            wh.ensure_table(table)
        with wh.transaction() as conn:
            for source_id, extract in extracts.items():
                params = {"source_id": source_id, "first_day": first_day, "last_day": last_day}
                wh.replace_rows(conn, SESSION_ROWS, extract.sessions, SOURCE_DAYS, params)
                wh.replace_rows(
                    conn, QUARANTINE, extract.quarantine, SOURCE_QUARANTINE_DAYS, params
                )
        quarantined = sum(len(e.quarantine) for e in extracts.values())
        if quarantined:
            context.log.warning(f"{quarantined} row(s) quarantined: see raw.quarantine")
        return dg.MaterializeResult(
            asset_key=rows_spec.key,
            metadata={
                "dagster/row_count": sum(len(e.sessions) for e in extracts.values()),
                "first_day": first_day.isoformat(),
                "last_day": last_day.isoformat(),
                "files_read": sum(len(e.files) for e in extracts.values()),
                "quarantined_rows": quarantined,
            },
        )

    return [session_csv_rows]
