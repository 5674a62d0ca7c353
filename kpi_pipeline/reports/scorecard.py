"""The scorecard: for each KPI and grain, the latest closed period's value against its path.

Read from `marts.kpi_scores` (whole-site segment, complete periods only), optionally narrowed
to some KPIs and grains, with a trend of the last N closed periods as a unicode sparkline.
Rendered as a fixed-width table (the default, as `kpi-pipeline scorecard` prints it), CSV,
JSON (raw numbers, exactly as the table holds them) or a markdown table.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from kpi_pipeline.metrics.score_columns import SCORECARD_COLUMNS
from kpi_pipeline.plan.models import Grain
from kpi_pipeline.reports.wording import (
    describe_period,
    format_interval,
    format_value,
    is_missing,
)
from kpi_pipeline.warehouse.engine import Warehouse

GRAINS = tuple(grain.value for grain in Grain)
_GRAIN_ORDER = {grain: order for order, grain in enumerate(GRAINS)}
FORMATS = ("table", "csv", "json", "markdown")

# Columns of `kpi_scores` the scorecard reads, in the order CSV and JSON carry them.
SCORE_FIELDS = SCORECARD_COLUMNS

LATEST_CLOSED_SQL = """
with closed as (
    select
        *,
        row_number() over (
            partition by kpi_id, grain order by period_start desc
        ) as recency
    from {kpi_scores}
    where segment_type = 'all' and not is_partial
)
select {fields}
from closed
where recency = 1
"""

CLOSED_TREND_SQL = """
with closed as (
    select
        kpi_id, grain, period_start, period_label, value,
        row_number() over (
            partition by kpi_id, grain order by period_start desc
        ) as recency
    from {kpi_scores}
    where segment_type = 'all' and not is_partial
)
select kpi_id, grain, period_start, period_label, value
from closed
where recency <= :periods
order by kpi_id, grain, period_start
"""

SPARK_BARS = "▁▂▃▄▅▆▇█"


def latest_closed_scores(
    warehouse: Warehouse,
    kpis: Collection[str] | None = None,
    grains: Collection[str] | None = None,
) -> pd.DataFrame:
    """One row per KPI and grain: its most recent complete period, whole-site segment.

    `kpis` / `grains` narrow the rows (None: all). Ordered by objective priority, KPI id and
    grain (day to quarter).
    """
    frame = warehouse.read_frame(
        LATEST_CLOSED_SQL.format(
            kpi_scores=warehouse.relation("marts", "kpi_scores"), fields=", ".join(SCORE_FIELDS)
        )
    )
    frame = _narrowed(frame, kpis, grains)
    order = frame["grain"].map(_GRAIN_ORDER)
    frame = frame.assign(grain_order=order).sort_values(
        ["objective_priority", "kpi_id", "grain_order"], kind="stable"
    )
    return frame.drop(columns="grain_order").reset_index(drop=True)


def latest_closed_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """What `latest_closed_scores` reads, from a `kpi_scores`-shaped frame in memory: per KPI
    and grain, the most recent complete whole-site period, in scorecard order."""
    whole = scores[(scores["segment_type"] == "all") & ~scores["is_partial"].astype(bool)]
    latest = whole.sort_values("period_start", kind="stable").groupby(["kpi_id", "grain"]).tail(1)
    order = latest["grain"].map(_GRAIN_ORDER)
    latest = latest.assign(grain_order=order).sort_values(
        ["objective_priority", "kpi_id", "grain_order"], kind="stable"
    )
    return latest[[c for c in SCORE_FIELDS if c in latest]].reset_index(drop=True)


def latest_values(latest: pd.DataFrame) -> dict[str, float]:
    """{"latest/<kpi_id>/<grain>": value} of `latest_closed_rows`, missing values left out:
    one stable key per series, so successive materializations chart it."""
    return {
        f"latest/{kpi_id}/{grain}": float(value)
        for kpi_id, grain, value in latest[["kpi_id", "grain", "value"]].itertuples(index=False)
        if not is_missing(value)
    }


def markdown_preview(latest: pd.DataFrame) -> str:
    """`latest_closed_rows` as a markdown table (the asset's preview in the Dagster UI)."""
    if latest.empty:
        return "No closed period yet: every period scored so far is partial."
    return format_markdown(latest)


def closed_trends(
    warehouse: Warehouse,
    periods: int,
    kpis: Collection[str] | None = None,
    grains: Collection[str] | None = None,
) -> pd.DataFrame:
    """The last `periods` complete periods of each KPI and grain (whole site), oldest first:
    kpi_id, grain, period_start, period_label, value."""
    if periods < 1:
        raise ValueError(f"periods must be at least 1, not {periods}")
    frame = warehouse.read_frame(
        CLOSED_TREND_SQL.format(kpi_scores=warehouse.relation("marts", "kpi_scores")),
        {"periods": int(periods)},
    )
    return _narrowed(frame, kpis, grains).reset_index(drop=True)


def sparkline(values: Sequence[float | None]) -> str:
    """Values as unicode bars scaled from the lowest (▁) to the highest (█); a missing value
    is a space, a flat series sits mid-height (▄) so it does not read as "at the bottom"."""
    present = [float(v) for v in values if not is_missing(v)]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    top = len(SPARK_BARS) - 1
    bars = []
    for value in values:
        if is_missing(value):
            bars.append(" ")
        elif high == low:
            bars.append(SPARK_BARS[top // 2])
        else:
            bars.append(SPARK_BARS[round((float(value) - low) / (high - low) * top)])
    return "".join(bars)


def with_trends(scores: pd.DataFrame, trends: pd.DataFrame) -> pd.DataFrame:
    """`scores` plus `trend` (the closed periods' values, oldest first, NaN as None) and
    `sparkline`, matched on kpi_id and grain; a KPI without closed periods gets empty ones."""
    series: dict[tuple[str, str], list[float | None]] = {}
    for kpi_id, grain, value in trends[["kpi_id", "grain", "value"]].itertuples(index=False):
        series.setdefault((kpi_id, grain), []).append(None if is_missing(value) else value)
    keys = zip(scores["kpi_id"], scores["grain"], strict=True)
    values = [series.get(key, []) for key in keys]
    return scores.assign(trend=values, sparkline=[sparkline(v) for v in values])


def with_deadlines(scores: pd.DataFrame, deadlines: Mapping[str, dt.date]) -> pd.DataFrame:
    """`scores` plus each KPI's `deadline` (its target date, a plan fact) and `summary`, the
    period in words (see `wording.describe_period`)."""
    deadline = scores["kpi_id"].map(lambda kpi_id: deadlines.get(kpi_id))
    summaries = [
        describe_period(row, day)
        for row, day in zip(scores.to_dict("records"), deadline, strict=True)
    ]
    return scores.assign(deadline=deadline, summary=summaries)


def render_scorecard(scores: pd.DataFrame, output_format: str = "table", wide: bool = False) -> str:
    """The scorecard in one of FORMATS (`wide` adds interval and forecast to table/markdown;
    CSV and JSON always carry every column)."""
    if output_format == "table":
        return format_scorecard(scores, wide=wide)
    if output_format == "markdown":
        return format_markdown(scores, wide=wide)
    if output_format == "csv":
        return format_csv(scores)
    if output_format == "json":
        return format_json(scores)
    raise ValueError(f"unknown scorecard format {output_format!r} (one of {', '.join(FORMATS)})")


def format_scorecard(scores: pd.DataFrame, wide: bool = False) -> str:
    """A fixed-width text table: objective, KPI, grain, period, value, expected, target, status.

    `wide` adds the value's interval, the forecast at the deadline with its interval and the
    projected status. With `sparkline` (see `with_trends`) a `trend` column follows. When a
    period's alerts are held (data still provisional, or sampled / thresholded), a last
    column `hold` says why: its status may still change, and no alert has gone out.
    """
    headers, rows, numeric = _cells(scores, wide)
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def format_markdown(scores: pd.DataFrame, wide: bool = False) -> str:
    """The table's cells as a GitHub-flavoured markdown table (numbers right-aligned)."""
    headers, rows, numeric = _cells(scores, wide)

    def line(cells: list[str]) -> str:
        escaped = (str(c).replace("|", "\\|") for c in cells)
        return "| " + " | ".join(escaped) + " |"

    align = ["---:" if i in numeric else "---" for i in range(len(headers))]
    return "\n".join([line(headers), line(align), *(line(r) for r in rows)])


def format_csv(scores: pd.DataFrame) -> str:
    """Every scorecard column, raw values (rates as fractions), empty cells for missing ones;
    `trend` as `;`-separated values."""
    columns = _machine_columns(scores)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in _records(scores, columns):
        writer.writerow(_csv_cell(record[c]) for c in columns)
    return out.getvalue().rstrip("\n")


def format_json(scores: pd.DataFrame) -> str:
    """A JSON list of row objects: raw numbers (null when missing), dates as ISO strings."""
    return json.dumps(_records(scores, _machine_columns(scores)), indent=2, ensure_ascii=False)


def _cells(scores: pd.DataFrame, wide: bool) -> tuple[list[str], list[list[str]], set[int]]:
    """Headers, formatted rows and the indexes of right-aligned (numeric) columns."""
    holds = scores["hold_reason"] if "hold_reason" in scores else pd.Series(dtype=object)
    show_holds = bool(holds.notna().any())
    show_trend = "sparkline" in scores
    headers = ["objective", "KPI", "grain", "period", "value"]
    if wide:
        headers.append("interval")
    headers += ["expected", "target", "status"]
    if wide:
        headers += ["forecast", "forecast interval", "projected"]
    if show_trend:
        headers.append("trend")
    if show_holds:
        headers.append("hold")
    numeric = {i for i, h in enumerate(headers) if h in _NUMERIC_HEADERS}
    rows = []
    for r in scores.to_dict("records"):
        kind = r["kind"]
        row = [
            f"{r['objective_priority']}. {r['objective_title']}",
            r["kpi_label"],
            r["grain"],
            r["period_label"],
            _dense(r["value"], kind),
        ]
        if wide:
            row.append(format_interval(r.get("ci_low"), r.get("ci_high"), kind, percent_sign="%"))
        row += [_dense(r["expected"], kind), _dense(r["target"], kind), r["status"]]
        if wide:
            row += [
                _dense(r.get("forecast_at_deadline"), kind),
                format_interval(
                    r.get("forecast_low"), r.get("forecast_high"), kind, percent_sign="%"
                ),
                _text(r.get("projected_status")),
            ]
        if show_trend:
            row.append(r["sparkline"])
        if show_holds:
            row.append(_hold(r.get("hold_reason")))
        rows.append(row)
    return headers, rows, numeric


_NUMERIC_HEADERS = {"value", "interval", "expected", "target", "forecast", "forecast interval"}


def _machine_columns(scores: pd.DataFrame) -> list[str]:
    extra = [c for c in ("deadline", "sparkline", "trend", "summary") if c in scores]
    return [c for c in SCORE_FIELDS if c in scores] + extra


def _records(scores: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, object]]:
    return [{c: _plain(record[c]) for c in columns} for record in scores.to_dict("records")]


def _plain(value: object) -> object:
    """A cell as a JSON value: dates as ISO strings, numpy scalars as Python, missing as None."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join("" if v is None else repr(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return value


def _dense(value: float | None, kind: str) -> str:
    return format_value(value, kind, percent_sign="%")


def _text(value: object) -> str:
    return "-" if is_missing(value) else str(value)


def _hold(reason: object) -> str:
    return "" if is_missing(reason) else f"held: {reason}"


def _narrowed(
    frame: pd.DataFrame, kpis: Collection[str] | None, grains: Collection[str] | None
) -> pd.DataFrame:
    if kpis is not None:
        frame = frame[frame["kpi_id"].isin(list(kpis))]
    if grains is not None:
        frame = frame[frame["grain"].isin(list(grains))]
    return frame
