"""Loading GA4 properties into a plan's raw tables, one day per transaction.

Every run of days [D1, D2] also re-pulls the `lookback_days` before D1 (GA4 revises recent
days), or more with `kpi-pipeline run --rollback N`. Each day is written in its own
transaction, so a run stopped by the daily quota keeps the days it finished and leaves the
others as they were. A day GA4 answers with no traffic rows, where rows were loaded before,
is suspicious rather than true: its rows are kept and the run fails (unless allowed).

Users KPIs are counted by GA4 once per period of their grain (users are not additive), in
the transaction of the day that ends the requested range, into `raw.ga4_period_users`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from kpi_pipeline.loading.commands import run_command
from kpi_pipeline.loading.context import RunDays
from kpi_pipeline.loading.coverage import SOURCE_DAYS, coverage_frame
from kpi_pipeline.loading.errors import LoadError, MissingDay, MissingDaysError, describe_days
from kpi_pipeline.metrics.periods import ONE_DAY, Period, period_of
from kpi_pipeline.plan.ga4 import Ga4Source
from kpi_pipeline.plan.models import Kpi, KpiKind, Plan, Segment
from kpi_pipeline.sources.ga4 import (
    GA4_EXTRACT_LOG,
    GA4_PERIOD_USERS,
    GA4_TABLES,
    GA4_TRAFFIC,
    TABLE_OF_REPORT,
    DailyQuotaExhausted,
    DayLog,
    Ga4Extractor,
)
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Days, Match

ALL_GA4_TABLES = (*GA4_TABLES, GA4_PERIOD_USERS, SOURCE_DAYS)


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


@dataclass
class Ga4SourceLoad:
    source_id: str
    start: dt.date  # first day re-pulled (look-back included)
    loaded_days: list[dt.date] = field(default_factory=list)
    logs: list[DayLog] = field(default_factory=list)
    users_periods: int = 0
    missing: list[MissingDay] = field(default_factory=list)
    emptied_days: list[dt.date] = field(default_factory=list)


class _EmptyAnswer(Exception):
    def __init__(self, rows_kept: int):
        self.rows_kept = rows_kept


def ga4_days(source: Ga4Source, plan: Plan, run: RunDays, rollback: int) -> list[dt.date]:
    """The days a run pulls from `source`: its own plus the look-back (or --rollback)."""
    back = max(source.lookback_days, rollback)
    start = max(plan.history_start, run.first - dt.timedelta(days=back))
    return Days(source.id, start, run.last).dates


def load_ga4_source(
    wh: Warehouse,
    extractor: Ga4Extractor,
    source: Ga4Source,
    plan: Plan,
    run: RunDays,
    rollback: int = 0,
) -> Ga4SourceLoad:
    """Pull and load every day of `source` for the run, one transaction per day.

    Raises `LoadError` on an exhausted daily quota (saying what was loaded and the command
    that resumes) and `MissingDaysError` when days that had rows came back empty.
    """
    for spec in ALL_GA4_TABLES:
        wh.ensure_table(spec)
    days = ga4_days(source, plan, run, rollback)
    load = Ga4SourceLoad(source.id, days[0])
    users_by_day: dict[dt.date, list[UsersRequest]] = {}
    for request in users_requests(plan, days[0], run.last):
        users_by_day.setdefault(request.through, []).append(request)
    allowed = run.allow_missing or source.allow_missing_days
    for day in days:
        try:
            load.logs.extend(
                load_day(wh, extractor, source, day, users_by_day.get(day, ()), allowed)
            )
        except _EmptyAnswer as empty:
            load.missing.append(
                MissingDay(
                    source.id,
                    day,
                    empty.rows_kept,
                    f"GA4 property {source.property_id}",
                    "an empty answer",
                )
            )
            continue
        except DailyQuotaExhausted as exc:
            done = describe_days(load.loaded_days)
            resume = day
            raise LoadError(
                f"GA4 daily quota exhausted for property {source.property_id} ({exc}). "
                f"Loaded {done}; {resume} and later were left as they were. Resume tomorrow "
                f"with: {run_command(run.plan_path, resume, run.last)}"
            ) from None
        load.users_periods += len(users_by_day.get(day, ()))
        load.loaded_days.append(day)
    if load.missing:
        raise MissingDaysError(
            load.missing,
            run_command(run.plan_path, run.first, run.last, allow_missing=True, rollback=rollback),
            loaded_note=f"The other days were loaded ({len(load.loaded_days)}).",
        )
    return load


def load_day(
    wh: Warehouse,
    extractor: Ga4Extractor,
    source: Ga4Source,
    day: dt.date,
    users: Sequence[UsersRequest] = (),
    allow_empty: bool = True,
) -> list[DayLog]:
    """Replace one day of one property, pages streamed straight in, all in one transaction;
    with it, the users of each period `users` cuts at this day (one request per period).
    With `allow_empty` False, a day that had traffic rows and is answered with none is
    rolled back (its rows kept) by raising `_EmptyAnswer`."""
    partition = Days(source.id, day, day)
    lineage = {
        "source_id": source.id,
        "property_id": source.property_id,
        "extracted_at": pd.Timestamp.now(tz="UTC"),
    }
    logs: list[DayLog] = []
    with wh.transaction() as conn:
        before = sum(wh.count_rows(conn, GA4_TRAFFIC, partition).values())
        for spec in GA4_TABLES:
            wh.replace_rows(conn, spec, pd.DataFrame(), partition)
        for report in extractor.reports:
            spec = TABLE_OF_REPORT[report.name]
            for item in extractor.stream_day(report, day):
                if isinstance(item, DayLog):
                    logs.append(item)
                    continue
                frame = item.frame.assign(**lineage)
                if item.starts_attempt:
                    wh.replace_rows(conn, spec, frame, partition)
                else:
                    wh.bulk_insert(conn, spec, frame)
        traffic_rows = sum(log.row_count for log in logs if log.report.name == "traffic")
        if before and not traffic_rows and not allow_empty:
            raise _EmptyAnswer(before)  # rolls the day back: its rows stay
        for request in users:
            _load_period_users(wh, conn, extractor, source, request, lineage)
        wh.bulk_insert(conn, GA4_EXTRACT_LOG, _log_frame(logs, lineage))
        covered = coverage_frame(
            source.id, [day], {day: traffic_rows}, lineage["extracted_at"].to_pydatetime()
        )
        wh.replace_rows(conn, SOURCE_DAYS, covered, partition)
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
    wh.replace_rows(conn, GA4_PERIOD_USERS, frame[GA4_PERIOD_USERS.column_names], Match(keys))


def _log_frame(logs: list[DayLog], lineage: dict) -> pd.DataFrame:
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
