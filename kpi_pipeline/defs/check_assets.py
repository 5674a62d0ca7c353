"""Data checks as Dagster asset checks: each expectation of each suite is one check on the
asset it checks, so the UI's Checks tab shows it with its observed value per run.

Each asset runs its checks in its own step, right after it materializes. Every check is
blocking: one that fails with ERROR severity stops what depends on its asset in the run
(scoring and alerts wait for clean data); a WARN failure lets the run go on, and the source
days it names carry a `check:<name>` quality flag that holds their periods' alerts.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from kpi_pipeline.checks.gx_runner import Outcome, run_suites
from kpi_pipeline.checks.results import CHECK_FLAGS, record
from kpi_pipeline.checks.suites import (
    ModelScope,
    RunWindow,
    Suite,
    derived_suites,
    mart_suites,
    model_suites,
    raw_suites,
)
from kpi_pipeline.defs.keys import relation_key
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.loading.coverage import SOURCE_DAYS
from kpi_pipeline.loading.email import EMAIL_TABLES
from kpi_pipeline.loading.files import FILE_TABLES
from kpi_pipeline.loading.ga4 import ALL_GA4_TABLES
from kpi_pipeline.metrics.periods import last_closed_day
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.incremental import FULL_REFRESH_TAG, current_scope
from kpi_pipeline.warehouse.sql_models import SqlModel

# Raw tables the sources' assets write (and so carry checks); the coverage and check-flag
# tables have several writers and are no asset of their own.
RAW_ASSET_TABLES: tuple[TableSpec, ...] = tuple(
    spec
    for spec in dict.fromkeys((*FILE_TABLES, *ALL_GA4_TABLES, *EMAIL_TABLES))
    if spec not in (SOURCE_DAYS, CHECK_FLAGS) and spec.name not in ("quarantine", "file_manifest")
)


class AssetChecks:
    """The checks of every asset, declared once from the plan and the SQL models; each
    asset runs its own right after it materializes (so a blocking failure stops exactly
    what depends on it)."""

    def __init__(self, loaded: LoadedPlan, models: list[SqlModel]):
        self.loaded = loaded
        self.models = models
        plan = loaded.plan
        placeholder = RunWindow(
            plan.history_start, plan.history_start, plan.history_start, plan.history_start
        )
        self._specs: dict[tuple[str, str], dict[str, dg.AssetCheckSpec]] = {}
        for suite in self._suites(placeholder) if plan.quality.enabled else []:
            for expect in suite.expectations:
                self._specs.setdefault(suite.asset, {}).setdefault(
                    expect.name,
                    dg.AssetCheckSpec(
                        expect.name,
                        asset=relation_key(*suite.asset),
                        description=f"{expect.description} "
                        f"(severity {plan.quality.severity_of(expect.name)})",
                        blocking=True,
                    ),
                )

    def _suites(self, window: RunWindow, scope: ModelScope = "all") -> list[Suite]:
        plan = self.loaded.plan
        return [
            *raw_suites(list(RAW_ASSET_TABLES), window),
            *derived_suites(plan, window),
            *model_suites(self.models, scope, window),
            *mart_suites(scope),
        ]

    @property
    def checked_assets(self) -> list[tuple[str, str]]:
        return sorted(self._specs)

    def specs(self, *keys: dg.AssetKey) -> list[dg.AssetCheckSpec]:
        return [
            spec
            for key in keys
            for spec in self._specs.get(tuple(key.path), {}).values()  # type: ignore[arg-type]
        ]

    def evaluate(
        self, context: dg.AssetExecutionContext, wh: Warehouse, *keys: dg.AssetKey
    ) -> Iterator[dg.AssetCheckResult]:
        """Run the checks of `keys`, record them, and yield their Dagster results."""
        wanted = {tuple(key.path) for key in keys}
        if not any(asset in self._specs for asset in wanted):
            return
        plan = self.loaded.plan
        first, last = _run_days(context, self.loaded)
        today = dt.datetime.now(plan.zone).date()
        window = RunWindow(first, last, plan.history_start, today)
        scope = _model_scope(context, wh)
        suites = [suite for suite in self._suites(window, scope) if suite.asset in wanted]
        symbols = {
            "history_start": plan.history_start.isoformat(),
            "today": today.isoformat(),
            "events_per_session_max": plan.quality.events_per_session_max,
        }
        outcomes = run_suites(wh, suites, symbols, plan.quality.severity_of)
        record(wh, outcomes, context.run_id, first, last, dt.datetime.now(dt.UTC))
        specs = {
            (asset, name): spec
            for asset in wanted
            for name, spec in self._specs.get(asset, {}).items()
        }
        yield from _results(context, outcomes, specs)


def _results(
    context: dg.AssetExecutionContext, outcomes: list[Outcome], specs: dict
) -> Iterator[dg.AssetCheckResult]:
    seen = set()
    for outcome in outcomes:
        key = (outcome.asset, outcome.check)
        if key in seen or key not in specs:
            continue
        seen.add(key)
        metadata: dict[str, object] = {
            "observed": outcome.observed,
            "failing_rows": outcome.failing_rows,
            "checked_rows": outcome.checked_rows,
        }
        if not outcome.sample.empty:
            metadata["sample"] = dg.MetadataValue.md(outcome.sample.to_markdown(index=False))
        if not outcome.flagged.empty:
            metadata["flagged_days"] = len(outcome.flagged)
        if not outcome.passed:
            context.log.warning(
                f"check {outcome.check} on {'/'.join(outcome.asset)} failed "
                f"({outcome.severity}): {outcome.observed}"
            )
        yield dg.AssetCheckResult(
            asset_key=relation_key(*outcome.asset),
            check_name=outcome.check,
            passed=outcome.passed,
            severity=(
                dg.AssetCheckSeverity.ERROR
                if outcome.severity == "error"
                else dg.AssetCheckSeverity.WARN
            ),
            metadata=metadata,
        )
    for key, spec in specs.items():
        if key not in seen:  # nothing to check this run (e.g. no rows): it holds
            yield dg.AssetCheckResult(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=True,
                metadata={"observed": "nothing to check"},
            )


def _model_scope(context: dg.AssetExecutionContext, wh: Warehouse) -> ModelScope:
    """Which rows of the SQL models this run's checks read (see `model_suites`): all on a
    full build, the recomputed days / periods on an incremental one, the run's own days
    before the run decided which (its staging views, checked ahead of that)."""
    if context.run.tags.get(FULL_REFRESH_TAG) == "1":
        return "all"
    scope = current_scope(wh, context.run_id)
    if scope is None:
        return "window"
    return "all" if scope.full else "incremental"


def _run_days(
    context: dg.AssetCheckExecutionContext, loaded: LoadedPlan
) -> tuple[dt.date, dt.date]:
    """The run's days (its partition range), or yesterday when the run has none."""
    tags = context.run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        return (
            dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_START_TAG]),
            dt.date.fromisoformat(tags[ASSET_PARTITION_RANGE_END_TAG]),
        )
    if "dagster/partition" in tags:
        day = dt.date.fromisoformat(tags["dagster/partition"])
        return day, day
    day = last_closed_day(dt.datetime.now(dt.UTC), loaded.plan.timezone)
    return day, day
