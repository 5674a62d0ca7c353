"""Run the daily job over a range of days as one Dagster run, and say what it did.

The CLI, scripts and tests all start runs through `run_days`, so they exercise exactly the
job the schedule runs (the same Definitions, the same partition-range tags). A
`RunProgress` given to `run_days` is attached as a Dagster logger: it reads the run's own
events (steps starting and ending, materializations and their metadata) and turns them
into one line per stage and an end summary; assets print nothing themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kpi_pipeline.definitions import build_definitions
from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
from kpi_pipeline.defs.scoring_assets import PUBLISH_STEP


def run_days(
    plan_path: str | Path,
    first: dt.date,
    last: dt.date,
    *,
    warehouse_url: str | None = None,
    instance: dg.DagsterInstance | None = None,
    log_level: str | None = None,
    tags: Mapping[str, str] | None = None,
    progress: RunProgress | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset for the days [first, last] in one run; never raises on failure.

    `log_level` sets Dagster's console logger; with `progress` and no `log_level` the
    console stays silent and `progress` alone reports.
    """
    defs = build_definitions(plan_path, warehouse_url=warehouse_url)
    job = defs.resolve_job_def(DAILY_JOB_NAME)
    if instance is None:
        instance = process_only_instance()
    loggers: dict[str, Any] = {}
    if log_level:
        loggers["console"] = {"config": {"log_level": log_level}}
    if progress is not None:
        progress.expect(first, last, job)
        job = job.with_logger_defs({**job.loggers, "progress": progress.logger_definition()})
        loggers["progress"] = {}
    run_config = {"loggers": loggers} if loggers else None
    return job.execute_in_process(
        instance=instance,
        run_config=run_config,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            **(tags or {}),
        },
        raise_on_error=False,
    )


def daily_job_from_environment() -> dg.JobDefinition:
    """The daily job of $KPI_PLAN on $KPI_WAREHOUSE_URL, as a code location builds it: what
    `dg.reconstructable` points the multiprocess executor's step processes at."""
    return build_definitions().resolve_job_def(DAILY_JOB_NAME)


# What a run without DAGSTER_HOME needs to keep: its lifecycle and step events (start,
# success, failure, skips, logs). Asset-level events are the bulk (one per day per asset in a
# range run) and are what the in-memory SQLite storage indexes at most cost.
_UNINDEXED_EVENTS = frozenset(
    {
        "ASSET_MATERIALIZATION",
        "ASSET_MATERIALIZATION_PLANNED",
        "ASSET_OBSERVATION",
        "ASSET_CHECK_EVALUATION",
        "ASSET_CHECK_EVALUATION_PLANNED",
        "STEP_OUTPUT",
        "HANDLED_OUTPUT",
        "LOADED_INPUT",
    }
)


def process_only_instance() -> dg.DagsterInstance:
    """An ephemeral instance for a run no one will look up (the CLI without DAGSTER_HOME):
    its storage dies with the process, so asset-level events are not written to it. The
    run's result still carries every event (`result.all_events`, the progress logger read
    them as they happen); a run under DAGSTER_HOME stores everything for the UI."""
    from dagster._core.instance import InstanceType
    from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
    from dagster._core.run_coordinator import DefaultRunCoordinator
    from dagster._core.storage.event_log import InMemoryEventLogStorage
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
    from dagster._core.storage.root import TemporaryLocalArtifactStorage
    from dagster._core.storage.runs import InMemoryRunStorage

    class RunEventsOnlyStorage(InMemoryEventLogStorage):
        def store_event(self, event, *args, **kwargs):
            if event.dagster_event_type in _UNINDEXED_EVENTS:
                return
            super().store_event(event, *args, **kwargs)

    # What `DagsterInstance.ephemeral()` builds, with the event storage above.
    return dg.DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=InMemoryRunStorage(),
        event_storage=RunEventsOnlyStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
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


# -- progress ---------------------------------------------------------------------------

SOURCE_ROWS_SUFFIX = "/rows"  # metadata `<source id>/rows`: rows a source wrote in the run


@dataclass
class _Materialization:
    asset: str
    partition: str | None
    metadata: dict[str, Any]


@dataclass
class RunProgress:
    """Per-stage lines while a run goes, from its Dagster events, and what it did at the end.

    `write` receives each line (None: collect only); `bar` redraws a one-line progress bar
    on `bar_stream` (a terminal) between lines.
    """

    write: Callable[[str], None] | None = None
    bar_stream: TextIO | None = None
    clock: Callable[[], float] = time.monotonic
    first: dt.date | None = None
    last: dt.date | None = None
    steps_total: int = 0
    sql_steps: list[str] = field(default_factory=list)
    started: float = 0.0
    steps_done: int = 0
    sql_done: int = 0
    current: str = ""
    failed: bool = False
    materializations: dict[str, list[_Materialization]] = field(default_factory=dict)

    def expect(self, first: dt.date, last: dt.date, job: dg.JobDefinition) -> None:
        self.first, self.last = first, last
        self.started = self.clock()
        nodes = job.graph.node_defs
        self.steps_total = len(nodes)
        self.sql_steps = [
            node.name
            for node in nodes
            if "sql" in {tag.split("/", 2)[-1] for tag in _kinds(job, node.name)}
            and node.name != PUBLISH_STEP
        ]

    @property
    def days(self) -> int:
        assert self.first is not None and self.last is not None
        return (self.last - self.first).days + 1

    def logger_definition(self) -> dg.LoggerDefinition:
        logger = logging.Logger("kpi_pipeline.progress", level=logging.DEBUG)
        logger.addHandler(_ProgressHandler(self))
        return dg.LoggerDefinition(lambda _init: logger, description="kpi-pipeline progress")

    # Events, as the handler hands them over.

    def on_event(self, event: dg.DagsterEvent) -> None:
        kind = event.event_type_value
        step = event.step_key or ""
        if kind == "STEP_START":
            self.current = step
            self._draw_bar()
        elif kind == "ASSET_MATERIALIZATION":
            m = event.event_specific_data.materialization
            metadata = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
            self.materializations.setdefault(step, []).append(
                _Materialization(m.asset_key.to_user_string(), m.partition, metadata)
            )
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            self.steps_done += 1
            self.failed = self.failed or kind == "STEP_FAILURE"
            if kind == "STEP_SUCCESS":
                line = self._stage_line(step)
                if line:
                    self._line(line)
            self._draw_bar()

    def on_message(self, level: int, message: str) -> None:
        """A warning an asset logged (`context.log.warning`): worth a line of its own. After
        a step failed, Dagster's warnings about each step it skips are left out: the failure,
        printed at the end, is the news."""
        if level >= logging.WARNING and not self.failed:
            self._line(f"warning: {message}")

    def _stage_line(self, step: str) -> str | None:
        done = self.materializations.get(step, [])
        if step in self.sql_steps:
            self.sql_done += 1
            rows = done[0].metadata.get("dagster/row_count") if done else None
            what = f", {rows:,} rows" if isinstance(rows, int) else ""
            name = done[0].asset if done else step
            return f"SQL model {self.sql_done} of {len(self.sql_steps)}: {name}{what}"
        if not done:
            return None
        if any(m.partition for m in done):
            return self._extract_line(step, done)
        if step == PUBLISH_STEP:
            tables = ", ".join(
                f"{m.asset} {m.metadata['dagster/row_count']:,}"
                for m in done
                if isinstance(m.metadata.get("dagster/row_count"), int)
            )
            return f"publish: {len(done)} marts in one transaction ({tables})"
        if step == "plan_tables":
            return f"plan: {len(done)} plan tables written"
        if any(m.asset == "marts/alert_state" for m in done):
            meta = done[0].metadata
            return (
                f"alerts: {meta.get('alerts_decided', 0)} decided, "
                f"{meta.get('deliveries_sent', 0)} sent, {meta.get('deliveries_failed', 0)} failed"
            )
        rows = done[0].metadata.get("dagster/row_count")
        stage = "scoring" if done[0].asset.startswith("marts/") else done[0].asset.split("/")[0]
        return f"{stage}: {done[0].asset}" + (f", {rows:,} rows" if isinstance(rows, int) else "")

    def _extract_line(self, step: str, done: list[_Materialization]) -> str:
        by_table: dict[str, int] = {}
        days: set[str] = set()
        for m in done:
            if m.partition is None:
                continue
            days.add(m.partition)
            rows = m.metadata.get("dagster/row_count")
            if isinstance(rows, int):
                by_table[m.asset] = by_table.get(m.asset, 0) + rows
        tables = ", ".join(f"{table} {rows:,}" for table, rows in by_table.items())
        quarantined = int(done[0].metadata.get("quarantined_rows") or 0)
        return (
            f"extract {step}: {len(days)} of {self.days} day(s), "
            f"{sum(by_table.values()):,} rows"
            + (f" ({tables})" if tables else "")
            + (f", {quarantined:,} quarantined" if quarantined else "")
        )

    def _line(self, text: str) -> None:
        if self.write is None:
            return
        self._clear_bar()
        elapsed = int(self.clock() - self.started)
        self.write(f"{elapsed // 60:02d}:{elapsed % 60:02d} {text}")
        self._draw_bar()

    def _draw_bar(self) -> None:
        if self.bar_stream is None or not self.steps_total:
            return
        width = 24
        filled = width * self.steps_done // self.steps_total
        self.bar_stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.steps_done}/{self.steps_total} "
            f"steps  {self.current[:40]}\x1b[K"
        )
        self.bar_stream.flush()

    def _clear_bar(self) -> None:
        if self.bar_stream is not None:
            self.bar_stream.write("\r\x1b[K")
            self.bar_stream.flush()

    def finish(self) -> None:
        self._clear_bar()

    # What the run did, for the end summary.

    def rows_by_source(self) -> dict[str, int]:
        rows: dict[str, int] = {}
        for done in self.materializations.values():
            if not any(m.partition for m in done):
                continue
            for key, value in done[0].metadata.items():
                if key.endswith(SOURCE_ROWS_SUFFIX) and isinstance(value, int):
                    source = key.removesuffix(SOURCE_ROWS_SUFFIX)
                    rows[source] = rows.get(source, 0) + value
        return rows

    def quarantined(self) -> int:
        return sum(
            int(done[0].metadata.get("quarantined_rows") or 0)
            for done in self.materializations.values()
            if done and any(m.partition for m in done)
        )

    def asset_metadata(self, asset: str) -> dict[str, Any] | None:
        for done in self.materializations.values():
            for m in done:
                if m.asset == asset:
                    return m.metadata
        return None

    def elapsed(self) -> float:
        return self.clock() - self.started


class _ProgressHandler(logging.Handler):
    def __init__(self, progress: RunProgress):
        super().__init__(logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is not None:
            self.progress.on_event(event)
        else:
            self.progress.on_message(record.levelno, str(meta.get("orig_message", "")))


def _kinds(job: dg.JobDefinition, node_name: str) -> set[str]:
    """The `dagster/kind/...` tags of the assets a node materializes."""
    layer = job.asset_layer
    tags: set[str] = set()
    for key in layer.asset_graph.get_all_asset_keys():
        node = layer.get(key)
        assets_def = node.assets_def
        if assets_def.node_def.name == node_name:
            tags.update(t for t in node.tags if t.startswith("dagster/kind/"))
    return tags


@dataclass(frozen=True)
class RunSummary:
    """The end of a run in a few lines: what was loaded, scored, sent, where, how long."""

    days: int
    rows_by_source: dict[str, int]
    quarantined: int
    checks_passed: int
    checks_failed: int
    scored_rows: int | None
    statuses: int
    statuses_changed: int
    alerts_decided: int
    alerts_sent: int
    warehouse: str
    elapsed_seconds: float

    def lines(self) -> list[str]:
        loaded = ", ".join(f"{source} {rows:,}" for source, rows in self.rows_by_source.items())
        scored = (
            "KPIs: not scored"
            if self.scored_rows is None
            else f"KPIs: {self.scored_rows:,} scores; {self.statuses} latest statuses, "
            f"{self.statuses_changed} changed"
        )
        return [
            f"rows loaded: {loaded or 'none'}; {self.quarantined:,} quarantined",
            scored,
            f"alerts: {self.alerts_decided} decided, {self.alerts_sent} sent",
            f"warehouse: {self.warehouse}",
            f"elapsed: {self.elapsed_seconds:.1f} s",
        ]


Statuses = Mapping[str, Mapping[str, str]]  # {kpi_id: {grain: status}}


def run_summary(
    progress: RunProgress, checks: CheckSummary, previous: Statuses, warehouse: str
) -> RunSummary:
    """Summarize a finished run; `previous` are the latest statuses before it ran."""
    scores = progress.asset_metadata("marts/kpi_scores")
    alerts = progress.asset_metadata("marts/alert_state") or {}
    current: Statuses = (scores or {}).get("latest_closed_statuses") or {}
    pairs = [
        (kpi, grain, status) for kpi, grains in current.items() for grain, status in grains.items()
    ]
    changed = sum(1 for kpi, grain, status in pairs if previous.get(kpi, {}).get(grain) != status)
    return RunSummary(
        days=progress.days,
        rows_by_source=progress.rows_by_source(),
        quarantined=progress.quarantined(),
        checks_passed=checks.passed,
        checks_failed=len(checks.failed),
        scored_rows=(scores or {}).get("dagster/row_count") if scores is not None else None,
        statuses=len(pairs),
        statuses_changed=changed,
        alerts_decided=int(alerts.get("alerts_decided", 0)),
        alerts_sent=int(alerts.get("deliveries_sent", 0)),
        warehouse=warehouse,
        elapsed_seconds=progress.elapsed(),
    )
