"""Scores (each KPI value against its path) and the history of what each run reported."""

import datetime as dt

import dagster as dg
import pandas as pd

from kpi_pipeline.checks.results import record_snapshot
from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import relation_key, table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.period_to_date import KPI_PERIOD_TO_DATE, period_to_date
from kpi_pipeline.metrics.plan_tables import PLAN_KPIS
from kpi_pipeline.metrics.rollup import (
    OBJECTIVE_STATUS,
    TACTIC_RANKING,
    objective_statuses,
    rank_tactics,
)
from kpi_pipeline.metrics.score_tables import (
    KPI_SCORES,
    KPI_SNAPSHOTS,
    latest_closed_statuses,
    scores_for_plan,
)
from kpi_pipeline.metrics.scoring import Goal
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.reports.scorecard import latest_closed_rows, latest_values, markdown_preview
from kpi_pipeline.warehouse.incremental import current_scope, mark_built
from kpi_pipeline.warehouse.incremental_scores import rescore_changed
from kpi_pipeline.warehouse.snapshots import prepare_snapshots, write_snapshot

KPI_VALUES_KEY = relation_key("marts", "kpi_values")
KPI_MEASURES_DAILY_KEY = relation_key("intermediate", "int_kpi_measures_daily")


def build_scoring_assets(loaded: LoadedPlan, checks: AssetChecks) -> list[dg.AssetsDefinition]:
    confidence = loaded.plan.scoring.confidence
    goals = {kpi.id: Goal.of(kpi, confidence) for _, kpi in loaded.plan.iter_kpis()}

    @dg.asset(
        key=table_key(KPI_SCORES),
        deps=[KPI_VALUES_KEY, table_key(PLAN_KPIS)],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="Each KPI value scored against the straight path from baseline to target.",
        metadata={"grain": KPI_SCORES.grain},
    )
    def kpi_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scope = current_scope(wh, context.run_id)
        build = "full"
        if scope is not None and not scope.full and wh.table_exists("marts", "kpi_scores"):
            # Only the rows the run's changed days can change (see incremental_scores).
            rescored, _ = rescore_changed(wh, goals, loaded.plan)
            build = f"incremental ({len(rescored)} rows re-scored)"
            # The metadata reads the whole-site rows (latest closed periods, coverage).
            scores = wh.read_frame(
                f"select * from {wh.relation(KPI_SCORES)} where segment_type = 'all'"
            )
            for column in ("period_start", "period_end", "as_of_date"):
                scores[column] = pd.to_datetime(scores[column])
            row_count = int(
                wh.read_frame(f"select count(*) as n from {wh.relation(KPI_SCORES)}")["n"][0]
            )
        else:
            values = wh.read_frame(f"select * from {wh.relation('marts', 'kpi_values')}")
            scores = scores_for_plan(values, goals, loaded.plan)
            wh.rewrite_table(KPI_SCORES, scores)
            row_count = len(scores)
        # Later runs compare their inputs with this build's (see warehouse/incremental.py).
        mark_built(wh, context.run_id)
        statuses = latest_closed_statuses(scores)
        latest = latest_closed_rows(scores)
        covered = {}
        if not scores.empty:
            covered = {
                "first_period_start": str(scores["period_start"].min().date()),
                "last_period_end": str(scores["period_end"].max().date()),
                "as_of_date": str(scores["as_of_date"].max().date()),
            }
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": row_count,
                "build": build,
                **covered,
                "latest_closed_statuses": dg.MetadataValue.json(statuses),
                # Numeric, under stable keys: the UI's Plots tab draws each across runs.
                **{key: dg.FloatMetadataValue(v) for key, v in latest_values(latest).items()},
                "preview": dg.MetadataValue.md(markdown_preview(latest)),
            }
        )

    @dg.asset(
        key=table_key(KPI_SNAPSHOTS),
        check_specs=checks.specs(table_key(KPI_SNAPSHOTS)),
        deps=[kpi_scores],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="What every run reported (run id, time, plan hash), stored as changes.",
        metadata={"grain": KPI_SNAPSHOTS.grain},
    )
    def kpi_snapshots(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scores = wh.read_frame(f"select * from {wh.relation(KPI_SCORES)}")
        now = dt.datetime.now(dt.UTC)
        prepare_snapshots(wh)
        with wh.transaction() as conn:
            written = write_snapshot(wh, conn, context.run_id, now, loaded.plan_hash, scores)
            # What the run reported, so a later change to its answer is detectable (a check).
            record_snapshot(wh, conn, context.run_id, scores, now)
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": written.opened,  # rows stored: new or changed scores
                "rows_reported": written.reported,
                "rows_closed": written.closed,
                "run_seq": written.run_seq,
                "plan_hash": loaded.plan_hash,
            }
        )
        yield from checks.evaluate(context, wh, table_key(KPI_SNAPSHOTS))

    directions = {kpi.id: kpi.direction.value for _, kpi in loaded.plan.iter_kpis()}
    objectives = {kpi.id: o.id for o, kpi in loaded.plan.iter_kpis()}

    @dg.asset(
        key=table_key(OBJECTIVE_STATUS),
        deps=[kpi_scores],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="Each objective's status from its KPIs' latest closed periods (weighted).",
        metadata={"grain": OBJECTIVE_STATUS.grain},
    )
    def objective_status(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        statuses = objective_statuses(
            wh.read_frame(f"select * from {wh.relation(KPI_SCORES)}"), loaded.plan
        )
        wh.rewrite_table(OBJECTIVE_STATUS, statuses)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(statuses),
                "rollup": loaded.plan.scoring.rollup.value,
            }
        )

    @dg.asset(
        key=table_key(TACTIC_RANKING),
        deps=[kpi_scores],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="Tactics ranked by how far behind the path they hold each KPI, worst first.",
        metadata={"grain": TACTIC_RANKING.grain},
    )
    def tactic_ranking(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scores = wh.read_frame(
            f"select * from {wh.relation(KPI_SCORES)} where segment_type = 'tactic'"
        )
        ranking = rank_tactics(scores, directions, objectives)
        wh.rewrite_table(TACTIC_RANKING, ranking)
        return dg.MaterializeResult(metadata={"dagster/row_count": len(ranking)})

    @dg.asset(
        key=table_key(KPI_PERIOD_TO_DATE),
        deps=[kpi_scores, KPI_MEASURES_DAILY_KEY],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="Each partial period so far against the same days of the previous period.",
        metadata={"grain": KPI_PERIOD_TO_DATE.grain},
    )
    def kpi_period_to_date(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scores = wh.read_frame(f"select * from {wh.relation(KPI_SCORES)} where is_partial")
        daily = wh.read_frame(
            f"select * from {wh.relation('intermediate', 'int_kpi_measures_daily')}"
        )
        frame = period_to_date(scores, daily, loaded.plan.fiscal_year_start_month)
        wh.rewrite_table(KPI_PERIOD_TO_DATE, frame)
        return dg.MaterializeResult(metadata={"dagster/row_count": len(frame)})

    return [kpi_scores, kpi_snapshots, objective_status, tactic_ranking, kpi_period_to_date]
