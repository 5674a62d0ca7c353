"""The scorecard: for each KPI and grain, the latest closed period's value against its path."""

from __future__ import annotations

import pandas as pd

from kpi_pipeline.warehouse.engine import Warehouse

_GRAIN_ORDER = {"day": 0, "week": 1, "month": 2, "quarter": 3}

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
select
    objective_priority, objective_title, kpi_id, kpi_label, kind, grain, period_label,
    period_start, value, expected, target, status, numerator, denominator, hold_reason
from closed
where recency = 1
"""


def latest_closed_scores(warehouse: Warehouse) -> pd.DataFrame:
    """One row per KPI and grain: its most recent complete period, whole-site segment."""
    frame = warehouse.read_frame(
        LATEST_CLOSED_SQL.format(kpi_scores=warehouse.relation("marts", "kpi_scores"))
    )
    frame["grain_order"] = frame["grain"].map(_GRAIN_ORDER)
    frame = frame.sort_values(["objective_priority", "kpi_id", "grain_order"], kind="stable")
    return frame.drop(columns="grain_order").reset_index(drop=True)


def format_scorecard(scores: pd.DataFrame) -> str:
    """A fixed-width text table: objective, KPI, grain, period, value, expected, target, status.

    When a period's alerts are held (data still provisional, or sampled / thresholded), a
    last column `hold` says why: its status may still change, and no alert has gone out.
    """
    headers = ["objective", "KPI", "grain", "period", "value", "expected", "target", "status"]
    holds = scores["hold_reason"] if "hold_reason" in scores else pd.Series(dtype=object)
    show_holds = bool(holds.notna().any())
    if show_holds:
        headers.append("hold")
    rows = [
        [
            f"{r.objective_priority}. {r.objective_title}",
            r.kpi_label,
            r.grain,
            r.period_label,
            _number(r.value, r.kind),
            _number(r.expected, r.kind),
            _number(r.target, r.kind),
            r.status,
            *([_hold(getattr(r, "hold_reason", None))] if show_holds else []),
        ]
        for r in scores.itertuples(index=False)
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    numeric = {4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in numeric else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _hold(reason: object) -> str:
    return "" if reason is None or pd.isna(reason) else f"held: {reason}"


def _number(value: float | None, kind: str) -> str:
    if value is None or pd.isna(value):
        return "-"
    if kind in ("volume", "users"):
        return f"{value:,.0f}"
    if kind.endswith("_rate"):
        return f"{value:.2%}"
    return f"{value:.4g}"
