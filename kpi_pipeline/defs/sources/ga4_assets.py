"""Raw GA4 tables (traffic, events, extract log) pulled per day partition through the Data API.

Users KPIs are counted by GA4 once per period of their grain (users are not additive), in
the transaction of the day that ends the requested range, into `raw.ga4_period_users`.

Every run of days [D1, D2] also re-pulls the `lookback_days` before D1 (GA4 revises recent
days), or more with `kpi-pipeline run --rollback N`. Each day is written in its own
transaction, so a run stopped by the daily quota keeps the days it finished and leaves the
others as they were.
"""

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import dagster as dg
import pandas as pd
from google.analytics.data_v1beta import BetaAnalyticsDataClient

from kpi_pipeline.defs.keys import table_key
from kpi_pipeline.defs.partitions import partition_days
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.periods import ONE_DAY, Period, period_of
from kpi_pipeline.plan.ga4 import Ga4Source, feeds_kpis
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.plan.models import Kpi, KpiKind, Plan, Segment
from kpi_pipeline.sources.ga4 import (
    GA4_EVENTS,
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    GA4_TABLES,
    GA4_TRAFFIC,
    TABLE_OF_REPORT,
    DailyQuotaExhausted,
    DayLog,
    Ga4DataError,
    Ga4Error,
    Ga4Extractor,
    QuotaPacer,
    RetryPolicy,
    property_yesterday,
)
from kpi_pipeline.sources.ga4.client import Ga4ConfigError, open_client
from kpi_pipeline.warehouse.engine import Warehouse

# Run tag set by `kpi-pipeline run --rollback N`: re-pull N days before the run's first day.
ROLLBACK_TAG = "kpi/ga4_rollback_days"

_DAY = "source_id = :source_id and date = :day"
_PERIOD = (
    "source_id = :source_id and kpi_id = :kpi_id and grain = :grain "
    "and period_start = :period_start"
)


@dataclass(frozen=True)
class UsersRequest:
    """A users KPI's period, counted by GA4 from its start to `through` (<= its end)."""

    kpi: Kpi
    period: Period
    through: dt.date


def users_requests(plan: Plan, first_day: dt.date, last_day: dt.date) -> list[UsersRequest]:
    """Each users KPI's periods overlapping [first_day, last_day], cut at `last_day`."""
    requests = []
    for _, kpi in plan.iter_kpis():
        if kpi.kind is not KpiKind.USERS:
            continue
        period = period_of(first_day, kpi.grains[0], plan.fiscal_year_start_month)
        while period.start <= last_day:
            requests.append(UsersRequest(kpi, period, min(period.end, last_day)))
            period = period_of(period.end + ONE_DAY, kpi.grains[0], plan.fiscal_year_start_month)
    return requests


class Ga4Resource(dg.ConfigurableResource):
    """The GA4 Data API client (gRPC). `credentials_file` arrives as a `dg.EnvVar`."""

    credentials_file: str | None = None
    endpoint: str | None = None  # plaintext loopback target of a local fake; None in production
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    retry_max_attempts: int = 6
    retry_deadline_seconds: float = 900.0
    hourly_quota_wait_seconds: float = 300.0
    pace_below_hourly_tokens: int = 4_000
    pace_max_pause_seconds: float = 60.0

    def client(self) -> AbstractContextManager[BetaAnalyticsDataClient]:
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
    """The GA4 sources that feed the KPIs (none when the plan chose CSV exports)."""
    return list(loaded.plan.sources.ga4) if feeds_kpis(loaded.plan, "ga4") else []


def build_ga4_resources(loaded: LoadedPlan, endpoint: str | None) -> dict[str, Ga4Resource]:
    """One client resource per GA4 source; credentials through the env var the plan names."""
    return {
        resource_key(source): Ga4Resource(
            credentials_file=dg.EnvVar(source.credentials_env_var), endpoint=endpoint
        )
        for source in ga4_sources(loaded)
    }


def build_ga4_assets(
    loaded: LoadedPlan, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    plan = loaded.plan
    sources = ga4_sources(loaded)
    event_names = sorted({m.event for m in plan.measures})
    specs = [
        dg.AssetSpec(
            table_key(GA4_TRAFFIC),
            group_name="sources",
            kinds={"googleanalytics", "pandas"},
            description="Daily sessions, engaged sessions and key events from the GA4 Data API.",
            metadata={"grain": GA4_TRAFFIC.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_EVENTS),
            group_name="sources",
            kinds={"googleanalytics", "pandas"},
            description="Daily counts of the events the plan's measures name, from GA4.",
            metadata={"grain": GA4_EVENTS.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_PERIOD_USERS),
            group_name="sources",
            kinds={"googleanalytics", "pandas"},
            description="Users KPIs' counts per period, one GA4 request per period "
            "(users are not additive across days).",
            metadata={"grain": GA4_PERIOD_USERS.grain},
        ),
        dg.AssetSpec(
            table_key(GA4_EXTRACT_LOG),
            group_name="sources",
            kinds={"googleanalytics", "pandas"},
            description="How each GA4 day was pulled: sampling, thresholding, time zone, quota.",
            metadata={"grain": GA4_EXTRACT_LOG.grain},
        ),
    ]

    @dg.multi_asset(
        name="ga4_reports",
        specs=specs,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        required_resource_keys={"warehouse", *(resource_key(s) for s in sources)},
    )
    def ga4_reports(context: dg.AssetExecutionContext):
        """Pull the run's days plus the look-back window from each GA4 property, day by day."""
        first_day, last_day = partition_days(context)
        rollback = int(context.run.tags.get(ROLLBACK_TAG, "0"))
        warehouse: WarehouseResource = context.resources.warehouse
        wh = warehouse.get()
        for spec in (*GA4_TABLES, GA4_PERIOD_USERS):
            wh.ensure_table(spec)
        _drop_undeclared_sources(wh, [s.id for s in sources], first_day, last_day)
        logs: list[DayLog] = []
        users_periods = 0  # users KPI periods requested
        summary: dict[str, object] = {"first_day": first_day.isoformat()}
        for source in sources:
            back = max(source.lookback_days, rollback)
            start = max(plan.history_start, first_day - dt.timedelta(days=back))
            days = [start + dt.timedelta(days=n) for n in range((last_day - start).days + 1)]
            resource: Ga4Resource = getattr(context.resources, resource_key(source))
            loaded_days: list[dt.date] = []
            source_logs: list[DayLog] = []
            users_by_day: dict[dt.date, list[UsersRequest]] = {}
            for request in users_requests(plan, start, last_day):
                users_by_day.setdefault(request.through, []).append(request)
            try:
                with resource.client() as client:
                    extractor = Ga4Extractor(
                        client,
                        source,
                        event_names=event_names,
                        plan_timezone=plan.timezone,
                        retry=resource.retry_policy(),
                        pacer=resource.pacer(),
                    )
                    for day in days:
                        source_logs.extend(
                            load_day(wh, extractor, source, day, users_by_day.get(day, ()))
                        )
                        users_periods += len(users_by_day.get(day, ()))
                        loaded_days.append(day)
            except DailyQuotaExhausted as exc:
                done = f"{loaded_days[0]}..{loaded_days[-1]}" if loaded_days else "no day"
                resume = days[len(loaded_days)]
                raise dg.Failure(
                    description=(
                        f"GA4 daily quota exhausted for property {source.property_id} ({exc}). "
                        f"Loaded {done}; {resume} and later were left as they were. Resume "
                        f"tomorrow with: kpi-pipeline run --from {resume} --to {last_day}"
                    ),
                    metadata={
                        "loaded_days": len(loaded_days),
                        "resume_from": resume.isoformat(),
                    },
                    allow_retries=False,
                ) from None
            except (Ga4Error, Ga4DataError, Ga4ConfigError) as exc:
                raise dg.Failure(
                    description=f"GA4 source {source.id!r} (property {source.property_id}): {exc}",
                    allow_retries=False,
                ) from None
            logs.extend(source_logs)
            summary.update(_source_summary(context, source, extractor, source_logs, last_day, plan))
            summary["repulled_from"] = start.isoformat()
        flagged = sorted({f for log in logs for f in log.flags})
        common = {
            **summary,
            "last_day": last_day.isoformat(),
            "quality_flags": ", ".join(flagged) or "none",
        }
        for spec, report in ((GA4_TRAFFIC, "traffic"), (GA4_EVENTS, "events")):
            rows = sum(log.row_count for log in logs if log.report.name == report)
            yield dg.MaterializeResult(
                asset_key=table_key(spec), metadata={**common, "dagster/row_count": rows}
            )
        yield dg.MaterializeResult(
            asset_key=table_key(GA4_PERIOD_USERS),
            metadata={**common, "users_periods": users_periods},
        )
        yield dg.MaterializeResult(
            asset_key=table_key(GA4_EXTRACT_LOG),
            metadata={**common, "dagster/row_count": len(logs)},
        )

    return [ga4_reports]


def _drop_undeclared_sources(
    wh: Warehouse, active: list[str], first_day: dt.date, last_day: dt.date
) -> None:
    """Clear the run's days of GA4 sources no longer feeding the KPIs (removed, or the plan
    switched to CSV exports), so their old rows are not counted next to the new source's."""
    names = {f"id{n}": source_id for n, source_id in enumerate(active)}
    where = "date between :first_day and :last_day"
    if names:
        where += f" and source_id not in ({', '.join(':' + name for name in names)})"
    params = {"first_day": first_day, "last_day": last_day, **names}
    periods = "period_start <= :last_day and period_end >= :first_day"
    if names:
        periods += f" and source_id not in ({', '.join(':' + name for name in names)})"
    with wh.transaction() as conn:
        for spec in GA4_TABLES:
            wh.replace_rows(conn, spec, pd.DataFrame(), where, params)
        wh.replace_rows(conn, GA4_PERIOD_USERS, pd.DataFrame(), periods, params)


def load_day(
    wh: Warehouse,
    extractor: Ga4Extractor,
    source: Ga4Source,
    day: dt.date,
    users: Sequence[UsersRequest] = (),
) -> list[DayLog]:
    """Replace one day of one property, pages streamed straight in, all in one transaction;
    with it, the users of each period `users` cuts at this day (one request per period)."""
    params = {"source_id": source.id, "day": day}
    lineage = {
        "source_id": source.id,
        "property_id": source.property_id,
        "extracted_at": pd.Timestamp.now(tz="UTC"),
    }
    logs: list[DayLog] = []
    with wh.transaction() as conn:
        for spec in GA4_TABLES:
            wh.replace_rows(conn, spec, pd.DataFrame(), _DAY, params)
        for report in extractor.reports:
            spec = TABLE_OF_REPORT[report.name]
            for item in extractor.stream_day(report, day):
                if isinstance(item, DayLog):
                    logs.append(item)
                    continue
                frame = item.frame.assign(**lineage)
                if item.starts_attempt:
                    wh.replace_rows(conn, spec, frame, _DAY, params)
                else:
                    wh.bulk_insert(conn, spec, frame)
        for request in users:
            _load_period_users(wh, conn, extractor, source, request, lineage)
        wh.bulk_insert(conn, GA4_EXTRACT_LOG, _log_frame(logs, source, lineage))
    return logs


def _load_period_users(
    wh: Warehouse,
    conn,
    extractor: Ga4Extractor,
    source: Ga4Source,
    request: UsersRequest,
    lineage: dict,
) -> None:
    """Replace one period of one users KPI: the whole, then by device if it is a segment."""
    kpi, period = request.kpi, request.period
    keys = {
        "source_id": source.id,
        "kpi_id": kpi.id,
        "grain": period.grain.value,
        "period_start": period.start,
    }
    frames = []
    for by_device in (False, True) if Segment.DEVICE in kpi.segments else (False,):
        rows, flags = extractor.period_users(
            kpi.users_metric, period.start, request.through, by_device=by_device
        )
        frames.append(rows.assign(quality_flags=",".join(flags) or None))
    frame = pd.concat(frames, ignore_index=True).assign(
        **{**keys, **lineage}, period_end=period.end, through_day=request.through
    )
    wh.replace_rows(conn, GA4_PERIOD_USERS, frame[GA4_PERIOD_USERS.column_names], _PERIOD, keys)


def _log_frame(logs: list[DayLog], source: Ga4Source, lineage: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                **lineage,
                "date": log.day,
                "report": log.report.name,
                "row_count": log.row_count,
                "pages": log.pages,
                "restarts": log.restarts,
                "sampled": log.quality.sampled,
                "sampling_rate": log.quality.sampling_rate,
                "subject_to_thresholding": log.quality.subject_to_thresholding,
                "data_loss_from_other_row": log.quality.data_loss_from_other_row,
                "truncation_reasons": ",".join(log.quality.truncation_reasons) or None,
                "empty_reason": log.quality.empty_reason or None,
                "time_zone": log.quality.time_zone or None,
                "currency_code": log.quality.currency_code or None,
                "timezone_mismatch": "timezone_mismatch" in log.flags,
                "quality_flags": ",".join(log.flags) or None,
                "tokens_per_day_remaining": log.quota.tokens_per_day,
                "tokens_per_hour_remaining": log.quota.tokens_per_hour,
            }
            for log in logs
        ],
        columns=GA4_EXTRACT_LOG.column_names,
    )


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
