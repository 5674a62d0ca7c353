"""Run the daily job over a range of days as one Dagster run.

The CLI, scripts and tests all start runs through `run_days`, so they exercise exactly the
job the schedule runs (the same Definitions, the same partition-range tags).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.defs.jobs import DAILY_JOB_NAME


def run_days(
    plan_path: str | Path,
    first: dt.date,
    last: dt.date,
    *,
    warehouse_url: str | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset for the days [first, last] in one run; never raises on failure."""
    defs = build_definitions(plan_path, warehouse_url=warehouse_url)
    run_config = (
        {"loggers": {"console": {"config": {"log_level": log_level}}}} if log_level else None
    )
    return defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
        instance=instance,
        run_config=run_config,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            **(tags or {}),
        },
        raise_on_error=False,
    )


def step_failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Failed step -> the innermost error message (Dagster wraps the one that says what to fix)."""
    failures = {}
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            while error is not None and (error.cause or error.context):
                error = error.cause or error.context
            failures[event.step_key] = _without_class(error) if error else "unknown error"
    return failures


@dataclass(frozen=True)
class CheckSummary:
    passed: int
    failed: list[str]  # one line per failed check: asset, check, severity, what it saw


def check_summary(result: dg.ExecuteInProcessResult) -> CheckSummary:
    """The run's data checks: how many passed, and a line for each that failed."""
    passed, failed = 0, []
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        evaluation = event.event_specific_data
        if evaluation.passed:
            passed += 1
            continue
        observed = evaluation.metadata.get("observed")
        failed.append(
            f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed "
            f"({evaluation.severity.value.lower()}): "
            f"{observed.value if observed is not None else 'see the Dagster UI'}"
        )
    return CheckSummary(passed, failed)


def _without_class(error) -> str:
    """The error's message without the `package.module.Class: ` Dagster puts before a
    `dg.Failure`'s description (that description is already the whole story)."""
    message = error.message.strip()
    head, sep, rest = message.partition(": ")
    if sep and error.cls_name == "Failure" and head.rsplit(".", 1)[-1] == "Failure":
        return rest
    return message
