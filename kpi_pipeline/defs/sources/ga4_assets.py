"""Raw GA4 tables (traffic, events, period users, extract log) pulled through the Data API.

The loading itself (look-back, one transaction per day, quota stops, empty answers) is
`kpi_pipeline.loading.ga4`; this module wires it to Dagster resources and metadata.
"""

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg

from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import PLAN_SOURCES_KEY, table_key
from kpi_pipeline.defs.partitions import failure, run_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.defs.sources.partition_rows import add_rows_per_day
from kpi_pipeline.loading.errors import LoadError
from kpi_pipeline.loading.ga4 import ALL_GA4_TABLES, Ga4SourceLoad, load_ga4_source
from kpi_pipeline.plan.ga4 import Ga4Source
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.sources.credentials import MissingCredentialsError, ga4_credentials
from kpi_pipeline.sources.ga4 import (
    GA4_EVENTS,
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    GA4_TRAFFIC,
    DayLog,
    Ga4DataError,
    Ga4Error,
    Ga4Extractor,
    QuotaPacer,
    RetryPolicy,
    property_yesterday,
)

# Run tag set by `kpi-pipeline run --rollback N`: re-pull N days before the run's first day.
ROLLBACK_TAG = "kpi/ga4_rollback_days"


class Ga4Resource(dg.ConfigurableResource):
    """The GA4 Data API client (gRPC). `credentials_file` arrives as a `dg.EnvVar` (None when
    the plan's variable is not set: reading the source then raises MissingCredentialsError)."""

    credentials_file: str | None = None
    endpoint: str | None = None  # plaintext loopback target of a local fake; None in production
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    retry_max_attempts: int = 6
    retry_deadline_seconds: float = 900.0
    hourly_quota_wait_seconds: float = 300.0
    pace_below_hourly_tokens: int = 4_000
    pace_max_pause_seconds: float = 60.0

    def client(self, source: Ga4Source) -> AbstractContextManager[Any]:
        """An open `BetaAnalyticsDataClient` (not named in the signature: Dagster reads the
        resource's type hints, and the client's module is imported only when one opens)."""
        if not self.credentials_file:
            raise MissingCredentialsError(ga4_credentials(source))
        # gRPC and the API client are imported when a GA4 source is read, not by every run.
        from kpi_pipeline.sources.ga4.client import open_client

        return open_client(credentials_file=self.credentials_file, endpoint=self.endpoint)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_seconds=self.retry_initial_seconds,
            maximum_seconds=self.retry_maximum_seconds,
            max_attempts=self.retry_max_attempts,
            deadline_seconds=self.retry_deadline_seconds,
            hourly_quota_wait_seconds=self.hourly_quota_wait_seconds,
        )

    def pacer(self) -> QuotaPacer:
        return QuotaPacer(self.pace_below_hourly_tokens, self.pace_max_pause_seconds)


def resource_key(source: Ga4Source) -> str:
    return f"ga4_{source.id}"


def ga4_sources(loaded: LoadedPlan) -> list[Ga4Source]:
    """Every declared GA4 source is loaded; `plan.sources` says whether its rows count."""
    return list(loaded.plan.sources.ga4)


def build_ga4_resources(
    loaded: LoadedPlan, endpoint: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, Ga4Resource]:
    """One client resource per GA4 source; credentials through the env var the plan names,
    when it is set (else the step reading the source says which variable to export)."""
    environ = os.environ if environ is None else environ
    resources = {}
    for source in ga4_sources(loaded):
        needed = ga4_credentials(source)
        credentials = dg.EnvVar(needed.variable) if needed.is_set(environ) else None
        resources[resource_key(source)] = Ga4Resource(
            credentials_file=credentials, endpoint=endpoint
        )
    return resources


def build_ga4_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition, checks: AssetChecks
) -> list[dg.AssetsDefinition]:
    plan = loaded.plan
    sources = ga4_sources(loaded)
    event_names = sorted({m.event for m in plan.measures})
    specs = [
        dg.AssetSpec(
            table_key(GA4_TRAFFIC),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"googleanalytics", "pandas"},
            description="Daily sessions, engaged sessions and key events from the GA4 Data API.",
            metadata={"grain": GA4_TRAFFIC.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_EVENTS),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"googleanalytics", "pandas"},
            description="Daily counts of the events the plan's measures name, from GA4.",
            metadata={"grain": GA4_EVENTS.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_PERIOD_USERS),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"googleanalytics", "pandas"},
            description="Users KPIs' counts per period, one GA4 request per period "
            "(users are not additive across days).",
            metadata={"grain": GA4_PERIOD_USERS.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_EXTRACT_LOG),
            group_name="sources",
            deps=[PLAN_SOURCES_KEY],
            kinds={"googleanalytics", "pandas"},
            description="How each GA4 day was pulled: sampling, thresholding, time zone, quota.",
            metadata={"grain": GA4_EXTRACT_LOG.grain},
        ),
    ]

    @dg.multi_asset(
        name="ga4_reports",
        specs=specs,
        check_specs=checks.specs(*(spec.key for spec in specs)),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        required_resource_keys={"warehouse", *(resource_key(s) for s in sources)},
    )
    def ga4_reports(context: dg.AssetExecutionContext):
        """Pull the run's days plus the look-back window from each GA4 property, day by day."""
        run = run_days(context, loaded)
        rollback = int(context.run.tags.get(ROLLBACK_TAG, "0"))
        warehouse: WarehouseResource = context.resources.warehouse
        wh = warehouse.get()
        for spec in ALL_GA4_TABLES:
            wh.ensure_table(spec)
        loads: list[Ga4SourceLoad] = []
        summary: dict[str, object] = {"first_day": run.first.isoformat()}
        for source in sources:
            from kpi_pipeline.sources.ga4.client import Ga4ConfigError  # with the client

            resource: Ga4Resource = getattr(context.resources, resource_key(source))
            try:
                with resource.client(source) as client:
                    extractor = Ga4Extractor(
                        client,
                        source,
                        event_names=event_names,
                        plan_timezone=plan.timezone,
                        retry=resource.retry_policy(),
                        pacer=resource.pacer(),
                    )
                    load = load_ga4_source(wh, extractor, source, plan, run, rollback)
            except LoadError as exc:
                raise failure(exc) from None
            except (Ga4Error, Ga4DataError, Ga4ConfigError) as exc:
                raise dg.Failure(
                    description=f"GA4 source {source.id!r} (property {source.property_id}): {exc}",
                    allow_retries=False,
                ) from None
            loads.append(load)
            summary.update(_source_summary(context, source, extractor, load.logs, run.last, plan))
            summary[f"{source.id}/rows"] = sum(
                log.row_count for log in load.logs if log.report.name in ("traffic", "events")
            )
            summary["repulled_from"] = load.start.isoformat()
        logs = [log for load in loads for log in load.logs]
        flagged = sorted({f for log in logs for f in log.flags})
        common = {
            **summary,
            "last_day": run.last.isoformat(),
            "quality_flags": ", ".join(flagged) or "none",
        }
        for spec, report in ((GA4_TRAFFIC, "traffic"), (GA4_EVENTS, "events")):
            by_day = _rows_by_day(log for log in logs if log.report.name == report)
            rows = add_rows_per_day(context, table_key(spec), by_day)
            yield dg.MaterializeResult(
                asset_key=table_key(spec), metadata={**common, "rows_in_run": rows}
            )
        yield dg.MaterializeResult(
            asset_key=table_key(GA4_PERIOD_USERS),
            metadata={**common, "users_periods": sum(load.users_periods for load in loads)},
        )
        log_rows = add_rows_per_day(
            context, table_key(GA4_EXTRACT_LOG), _rows_by_day(logs, count_logs=True)
        )
        yield dg.MaterializeResult(
            asset_key=table_key(GA4_EXTRACT_LOG), metadata={**common, "rows_in_run": log_rows}
        )
        yield from checks.evaluate(context, wh, *(spec.key for spec in specs))

    return [ga4_reports]


def _rows_by_day(logs: Iterable[DayLog], count_logs: bool = False) -> dict[dt.date, int]:
    """Rows pulled per day (or, with `count_logs`, day-reports logged per day)."""
    counts: dict[dt.date, int] = {}
    for log in logs:
        counts[log.day] = counts.get(log.day, 0) + (1 if count_logs else log.row_count)
    return counts


def _source_summary(
    context: dg.AssetExecutionContext,
    source: Ga4Source,
    extractor: Ga4Extractor,
    logs: list[DayLog],
    last_day: dt.date,
    plan,
) -> dict[str, object]:
    """Metadata for one property; a time zone unlike the plan's is reported, not hidden."""
    zones = sorted({log.quality.time_zone for log in logs if log.quality.time_zone})
    summary: dict[str, object] = {
        f"{source.id}/requests": extractor.stats.requests,
        f"{source.id}/retries": len(extractor.stats.retries),
        f"{source.id}/paced_seconds": round(extractor.stats.paced_seconds, 1),
        f"{source.id}/property_time_zone": ", ".join(zones) or "unknown",
    }
    for name, value in extractor.stats.lowest_quota.items():
        summary[f"{source.id}/{name}_remaining"] = value
    sampled = [log.day.isoformat() for log in logs if log.quality.sampled]
    if sampled:
        context.log.warning(f"GA4 {source.id}: sampled data on {len(sampled)} day-report(s)")
        summary[f"{source.id}/sampled_days"] = ", ".join(sorted(set(sampled)))
    mismatched = [z for z in zones if z != plan.timezone]
    if mismatched:
        zone = mismatched[0]
        yesterday = property_yesterday(dt.datetime.now(dt.UTC), zone)
        message = (
            f"GA4 property {source.property_id} reports days in {zone}, the plan in "
            f"{plan.timezone}: its days are not the plan's days (yesterday there is {yesterday})"
        )
        context.log.warning(message)
        summary[f"{source.id}/timezone_mismatch"] = message
        if last_day > yesterday:
            context.log.warning(f"GA4 {source.id}: {last_day} is not over yet in {zone}")
    return summary
