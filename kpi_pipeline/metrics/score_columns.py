"""The columns of `marts.kpi_scores`, declared once, and every list of them the code reads.

Pure data: scoring (what it adds to a `kpi_values` row), the scored tables of
`score_tables` and the reports (scorecard, HTML report) take their column lists from
`KPI_SCORES` here, each name checked against it, so a renamed or dropped column fails at
import rather than in a query. Imports no scoring and no reports (either may import this).
"""

from __future__ import annotations

from kpi_pipeline.lib.tables import ColumnType, TableSpec

_COLUMNS: tuple[tuple[str, ColumnType], ...] = (
    ("kpi_id", "text"),
    ("kpi_label", "text"),
    ("kind", "text"),
    ("direction", "text"),
    ("objective_id", "text"),
    ("objective_title", "text"),
    ("objective_priority", "integer"),
    ("grain", "text"),
    ("period_start", "date"),
    ("period_end", "date"),
    ("period_label", "text"),
    ("segment_type", "text"),
    ("segment", "text"),
    ("numerator", "double"),
    ("denominator", "double"),
    ("value", "double"),
    ("days_with_data", "bigint"),
    ("is_partial", "boolean"),
    ("as_of_date", "date"),
    ("quality_flags", "text"),
    ("expected", "double"),
    ("target", "double"),
    ("tolerance_band", "double"),
    ("status", "text"),
    ("ci_low", "double"),
    ("ci_high", "double"),
    ("forecast_at_deadline", "double"),
    ("projected_status", "text"),
    ("forecast_low", "double"),
    ("forecast_high", "double"),
    ("hold_reason", "text"),
    # The days the period was judged on: the KPI's sources covered them (see kpi_values).
    ("covered_from", "date"),
    ("covered_to", "date"),
    ("days_covered", "bigint"),
)

KPI_SCORES = TableSpec(
    "marts",
    "kpi_scores",
    _COLUMNS,
    grain="one row per kpi, grain, period_start, segment_type and segment",
    keys=("kpi_id", "grain", "period_start", "segment_type", "segment"),
)


def score_columns(*names: str) -> tuple[str, ...]:
    """`names`, in the order given, each checked to be a `kpi_scores` column."""
    unknown = [name for name in names if name not in KPI_SCORES.column_names]
    if unknown:
        raise ValueError(f"not columns of {KPI_SCORES.qualified_name}: {', '.join(unknown)}")
    return names


def score_columns_between(first: str, last: str) -> tuple[str, ...]:
    """The `kpi_scores` columns from `first` to `last` (both included), in table order."""
    names = KPI_SCORES.column_names
    return tuple(names[names.index(first) : names.index(last) + 1])


# What scoring adds to a `kpi_values` row (`scoring.score_frame`), in table order.
SCORED_COLUMNS = score_columns_between("expected", "forecast_high")

# A period's judgement as people read it (scorecard CSV / JSON, the HTML report's data):
# the scored columns with the forecast interval before the projected status, then why
# alerts are held and the source's quality flags.
_JUDGEMENT = score_columns(
    "expected",
    "target",
    "tolerance_band",
    "status",
    "ci_low",
    "ci_high",
    "forecast_at_deadline",
    "forecast_low",
    "forecast_high",
    "projected_status",
    "hold_reason",
    "quality_flags",
)

# The scorecard's columns (`reports.scorecard`), in the order its CSV and JSON carry them.
SCORECARD_COLUMNS = (
    *score_columns(
        "objective_priority",
        "objective_id",
        "objective_title",
        "kpi_id",
        "kpi_label",
        "kind",
        "direction",
        "grain",
        "period_label",
        "period_start",
        "period_end",
        "value",
        "numerator",
        "denominator",
    ),
    *_JUDGEMENT,
)

# The columns the HTML report shows and embeds (`reports.html`, whole-site rows).
REPORT_COLUMNS = (
    *score_columns(
        "kpi_id",
        "grain",
        "period_start",
        "period_end",
        "period_label",
        "is_partial",
        "as_of_date",
        "numerator",
        "denominator",
        "value",
    ),
    *_JUDGEMENT,
)
