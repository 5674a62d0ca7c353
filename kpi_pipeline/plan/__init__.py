"""The strategic plan: validated models loaded from `plan_config/*.yaml`."""

from kpi_pipeline.plan.loader import LoadedPlan, PlanError, PlanIssue, load_plan, plan_hash
from kpi_pipeline.plan.models import Grain, Kpi, KpiKind, Objective, Plan

__all__ = [
    "Grain",
    "Kpi",
    "KpiKind",
    "LoadedPlan",
    "Objective",
    "Plan",
    "PlanError",
    "PlanIssue",
    "load_plan",
    "plan_hash",
]
