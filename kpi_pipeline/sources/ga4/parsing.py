"""GA4 responses -> typed frames, quality flags and quota, parsed deliberately.

Metric values always arrive as strings ("12", "12.0", "3.5"): integer metrics must hold an
integral number and are stored as integers; anything that is not a finite number is an
error, never a silent NaN.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kpi_pipeline.sources.ga4.reports import KEY_EVENTS_COLUMN, TRAFFIC_REPORT, ReportSpec

if TYPE_CHECKING:
    from google.analytics.data_v1beta.types import ResponseMetaData, RunReportResponse


class Ga4DataError(ValueError):
    """A response that cannot be trusted (bad number, a row of another day)."""


@dataclass(frozen=True)
class QuotaSnapshot:
    """Tokens left after a request (None when the API did not say)."""

    tokens_per_day: int | None = None
    tokens_per_hour: int | None = None
    tokens_per_project_per_hour: int | None = None


@dataclass(frozen=True)
class Quality:
    """What a response's metadata says about the trustworthiness of its rows."""

    sampling_rate: float | None = None  # samples read / sampling space; None = not sampled
    subject_to_thresholding: bool = False
    data_loss_from_other_row: bool = False
    truncation_reasons: tuple[str, ...] = ()
    empty_reason: str = ""
    time_zone: str = ""
    currency_code: str = ""

    @property
    def sampled(self) -> bool:
        return self.sampling_rate is not None

    def merge(self, other: Quality) -> Quality:
        """Quality of several pages of one query: a flag on any page holds for the day."""
        rates = [r for r in (self.sampling_rate, other.sampling_rate) if r is not None]
        return Quality(
            sampling_rate=min(rates) if rates else None,
            subject_to_thresholding=self.subject_to_thresholding or other.subject_to_thresholding,
            data_loss_from_other_row=self.data_loss_from_other_row
            or other.data_loss_from_other_row,
            truncation_reasons=tuple(
                dict.fromkeys((*self.truncation_reasons, *other.truncation_reasons))
            ),
            empty_reason=self.empty_reason or other.empty_reason,
            time_zone=self.time_zone or other.time_zone,
            currency_code=self.currency_code or other.currency_code,
        )

    def flags(self, plan_timezone: str) -> list[str]:
        """Short names carried to KPI rows (`quality_flags`), in a fixed order."""
        flags = []
        if self.sampled:
            flags.append("sampled")
        if self.subject_to_thresholding:
            flags.append("thresholded")
        if self.data_loss_from_other_row:
            flags.append("other_row")
        if self.truncation_reasons:
            flags.append("truncated")
        if self.time_zone and self.time_zone != plan_timezone:
            flags.append("timezone_mismatch")
        return flags


def quality_of(metadata: ResponseMetaData) -> Quality:
    rates = [
        s.samples_read_count / s.sampling_space_size
        for s in metadata.sampling_metadatas
        if s.sampling_space_size > 0
    ]
    return Quality(
        sampling_rate=min(rates) if rates else None,
        subject_to_thresholding=bool(metadata.subject_to_thresholding),
        data_loss_from_other_row=bool(metadata.data_loss_from_other_row),
        truncation_reasons=tuple(
            getattr(r, "name", str(r)) for r in metadata.data_truncation_reasons
        ),
        empty_reason=metadata.empty_reason or "",
        time_zone=metadata.time_zone or "",
        currency_code=metadata.currency_code or "",
    )


def _protobuf(response: RunReportResponse):
    """The raw protobuf message under a proto-plus response (fast field access)."""
    return type(response).pb(response)


def quota_of(response: RunReportResponse) -> QuotaSnapshot:
    raw = _protobuf(response)
    if not raw.HasField("property_quota"):
        return QuotaSnapshot()
    quota = raw.property_quota

    def remaining(field: str) -> int | None:
        return getattr(quota, field).remaining if quota.HasField(field) else None

    return QuotaSnapshot(
        tokens_per_day=remaining("tokens_per_day"),
        tokens_per_hour=remaining("tokens_per_hour"),
        tokens_per_project_per_hour=remaining("tokens_per_project_per_hour"),
    )


def parse_metric(values: pd.Series, name: str, *, integer: bool) -> pd.Series:
    """Strings -> numbers: "12.0" is exactly 12; "", "NaN" or "1.5" for a count are errors."""
    numbers = pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        raise Ga4DataError(f"metric {name}: {values[bad].iloc[0]!r} is not a finite number")
    if integer:
        fractional = numbers.to_numpy() % 1 != 0
        if fractional.any():
            raise Ga4DataError(f"metric {name}: {values[fractional].iloc[0]!r} is not a count")
        return numbers.astype("int64")
    return numbers


def rows_frame(
    response: RunReportResponse,
    report: ReportSpec,
    key_event_metrics: list[str],
    day: dt.date,
) -> pd.DataFrame:
    """The response's rows as typed columns named after the report (headers read by name)."""
    raw = _protobuf(response)
    rows = raw.rows
    if rows and not raw.dimension_headers:
        raise Ga4DataError("response rows without dimension headers")
    # Column by column, straight from the protobuf rows: no per-row Python lists or dicts.
    text: dict[str, list[str]] = {
        h.name: [row.dimension_values[i].value for row in rows]
        for i, h in enumerate(raw.dimension_headers)
    }
    text.update(
        {
            h.name: [row.metric_values[i].value for row in rows]
            for i, h in enumerate(raw.metric_headers)
        }
    )
    index = pd.RangeIndex(len(rows))
    missing = [ga4 for ga4 in _expected_fields(report, key_event_metrics) if ga4 not in text]
    if missing:
        raise Ga4DataError(f"{report.name} response lacks {missing}")
    if set(text["date"]) - {day.strftime("%Y%m%d")}:
        raise Ga4DataError(f"{report.name} report for {day} returned rows of another day")
    frame = pd.DataFrame({"date": pd.Series([day] * len(index), index=index, dtype=object)})
    for ga4, column in report.dimensions:
        if column != "date":
            frame[column] = pd.Series(text.pop(ga4), index=index, dtype=object)
    for ga4, column in report.integer_metrics:
        frame[column] = parse_metric(
            pd.Series(text.pop(ga4), index=index, dtype=object), ga4, integer=True
        )
    if report is TRAFFIC_REPORT:
        key_events = pd.Series(0.0, index=index)
        for ga4 in key_event_metrics:
            values = pd.Series(text.pop(ga4), index=index, dtype=object)
            key_events = key_events + parse_metric(values, ga4, integer=False)
        frame[KEY_EVENTS_COLUMN] = key_events
    return frame


def users_frame(
    response: RunReportResponse | None, metric: str, *, by_device: bool
) -> pd.DataFrame:
    """A users response as (segment_type, segment, users); `None` means GA4 saw nobody."""
    columns = ["segment_type", "segment", "users"]
    if response is None:
        return pd.DataFrame([("all", "all", 0)], columns=columns).astype({"users": "int64"})
    raw = _protobuf(response)
    dimensions = [h.name for h in raw.dimension_headers]
    metrics = [h.name for h in raw.metric_headers]
    wanted = ["deviceCategory"] if by_device else []
    if raw.rows and (dimensions != wanted or metric not in metrics):
        raise Ga4DataError(f"{metric} response has dimensions {dimensions}, metrics {metrics}")
    at = metrics.index(metric) if metric in metrics else 0
    users = parse_metric(
        pd.Series([row.metric_values[at].value for row in raw.rows], dtype=object),
        metric,
        integer=True,
    )
    if by_device:
        segments = [row.dimension_values[0].value for row in raw.rows]
    else:
        segments = ["all"] * len(raw.rows)
    return pd.DataFrame(
        {
            "segment_type": pd.Series(
                ["device" if by_device else "all"] * len(raw.rows), dtype=object
            ),
            "segment": pd.Series(segments, dtype=object),
            "users": users.astype("int64"),
        },
        columns=columns,
    )


def _expected_fields(report: ReportSpec, key_event_metrics: list[str]) -> list[str]:
    fields = [ga4 for ga4, _ in report.dimensions] + [ga4 for ga4, _ in report.integer_metrics]
    return fields + key_event_metrics if report is TRAFFIC_REPORT else fields
