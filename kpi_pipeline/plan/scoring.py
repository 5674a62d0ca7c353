"""The plan's `scoring:` section: interval confidence, forecast window, objective roll-up."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from kpi_pipeline.plan.base import StrictModel


class RollupMode(StrEnum):
    WEIGHTED = "weighted"  # weighted mean of the KPIs' severities (KPI `weight`, default 1)
    WORST_OF = "worst_of"  # the objective is as bad as its worst KPI


class ScoringConfig(StrictModel):
    confidence: float = Field(
        default=0.95, gt=0, lt=1, description="Confidence level of rate intervals and forecasts."
    )
    forecast_periods: int = Field(
        default=8, ge=3, description="Closed periods the deadline forecast is fitted on."
    )
    rollup: RollupMode = RollupMode.WEIGHTED
