"""What a file-source load did, as asset metadata and run warnings."""

from pathlib import Path

import dagster as dg

from kpi_pipeline.loading.context import RunDays
from kpi_pipeline.loading.errors import describe_days
from kpi_pipeline.loading.files import FileSourceLoad


def file_load_metadata(
    context: dg.AssetExecutionContext, loads: list[FileSourceLoad], run: RunDays
) -> dict[str, object]:
    for load in loads:
        for warning in load.warnings:
            context.log.warning(warning)
        if load.quarantined:
            context.log.warning(
                f"source {load.source_id!r}: {load.quarantined} row(s) quarantined "
                "(see the raw.quarantine table of this plan)"
            )
        if load.rows_outside_days:
            context.log.info(
                f"source {load.source_id!r}: {load.rows_outside_days} row(s) of the files read "
                f"are dated outside {run.first}..{run.last} (left out)"
            )
        if load.days_without_rows:
            context.log.warning(
                f"source {load.source_id!r}: no rows for {len(load.days_without_rows)} day(s): "
                f"{describe_days(load.days_without_rows)}"
                + (
                    ""
                    if load.files_matched
                    else f" (no file matches {Path(run.base_dir, load.glob).resolve()})"
                )
            )
        if load.emptied_days:
            context.log.warning(
                f"source {load.source_id!r}: emptied {describe_days(load.emptied_days)} "
                "(missing days allowed)"
            )
    missing = sorted({d for load in loads for d in load.days_without_rows})
    return {
        "first_day": run.first.isoformat(),
        "last_day": run.last.isoformat(),
        "files_matched": sum(load.files_matched for load in loads),
        "files_parsed": sum(load.files_read for load in loads),
        "bytes_parsed": sum(load.bytes_read for load in loads),
        "files_skipped_unchanged": sum(load.files_skipped_unchanged for load in loads),
        "skipped_duplicate_files": sum(len(load.duplicate_files) for load in loads),
        "unreadable_files": sum(len(load.file_errors) for load in loads),
        "quarantined_rows": sum(load.quarantined for load in loads),
        "rows_outside_run_days": sum(load.rows_outside_days for load in loads),
        "days_without_rows": len(missing),
        "emptied_days": sum(len(load.emptied_days) for load in loads),
        "file_formats": dg.MetadataValue.json([f for load in loads for f in load.formats]),
        # Rows each source wrote over its tables (the CLI's summary reads `<source>/rows`).
        **{f"{load.source_id}/rows": sum(load.rows.values()) for load in loads},
    }


def unreadable_file(exc: OSError) -> dg.Failure:
    """A matched file that cannot be opened (permissions, a folder): one line naming it.
    Files are read before the load's transaction, so the run changed nothing."""
    return dg.Failure(
        description=f"cannot read {exc.filename}: {exc.strerror or exc}; this run changed "
        "nothing: make the file readable (or move it out of the source's folder) and run again",
        allow_retries=False,
    )
