"""Raw tables loaded from the plan's CSV exports, one day partition (or range) at a time."""

from dataclasses import asdict

import dagster as dg

from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.partitions import SOURCE_DAYS, SOURCE_QUARANTINE_DAYS, partition_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.sources.csv_export import CSV_EVENTS, CSV_TRAFFIC, read_csv_exports
from kpi_pipeline.sources.quarantine import QUARANTINE


def build_csv_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            table_key(CSV_TRAFFIC),
            group_name="sources",
            kinds={"csv", "pandas"},
            description="Daily sessions, engaged sessions and key events from the CSV exports.",
            metadata={"grain": CSV_TRAFFIC.grain},
        ),
        dg.AssetSpec(
            table_key(CSV_EVENTS),
            group_name="sources",
            kinds={"csv", "pandas"},
            description="Daily event counts by event name (e.g. form starts and submits).",
            metadata={"grain": CSV_EVENTS.grain},
        ),
    ]

    @dg.multi_asset(
        name="csv_exports",
        specs=specs,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def csv_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Replace the run's days of every CSV source in one transaction; bad rows quarantined."""
        first_day, last_day = partition_days(context)
        extracts = {
            source.id: read_csv_exports(source, loaded.base_dir, first_day, last_day)
            for source in loaded.plan.sources.csv_exports
        }
        wh = warehouse.get()
        for spec in (CSV_TRAFFIC, CSV_EVENTS, QUARANTINE):
            wh.ensure_table(spec)
        with wh.transaction() as conn:
            for source_id, extract in extracts.items():
                params = {"source_id": source_id, "first_day": first_day, "last_day": last_day}
                wh.replace_rows(conn, CSV_TRAFFIC, extract.traffic, SOURCE_DAYS, params)
                wh.replace_rows(conn, CSV_EVENTS, extract.events, SOURCE_DAYS, params)
                wh.replace_rows(
                    conn, QUARANTINE, extract.quarantine, SOURCE_QUARANTINE_DAYS, params
                )
        quarantined = sum(len(e.quarantine) for e in extracts.values())
        if quarantined:
            context.log.warning(f"{quarantined} row(s) quarantined: see raw.quarantine")
        missing = sorted({d.isoformat() for e in extracts.values() for d in e.days_without_rows})
        common = {
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
            "files_read": sum(len(e.files) for e in extracts.values()),
            "quarantined_rows": quarantined,
            "days_without_rows": len(missing),
            "skipped_duplicate_files": sum(
                len(e.skipped_duplicate_files) for e in extracts.values()
            ),
            "file_formats": dg.MetadataValue.json(
                [asdict(f) for e in extracts.values() for f in e.formats]
            ),
        }
        if missing:
            context.log.warning(f"no rows for {len(missing)} day(s), first {missing[:5]}")
        yield dg.MaterializeResult(
            asset_key=table_key(CSV_TRAFFIC),
            metadata={
                **common,
                "dagster/row_count": sum(len(e.traffic) for e in extracts.values()),
            },
        )
        yield dg.MaterializeResult(
            asset_key=table_key(CSV_EVENTS),
            metadata={**common, "dagster/row_count": sum(len(e.events) for e in extracts.values())},
        )

    return [csv_exports]
