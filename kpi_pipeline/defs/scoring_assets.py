"""The marts, published together, and the history of what each run reported.

One step (`publish_marts`) builds every mart in one transaction: the mart SQL models
(`kpi_values`, `unmapped_traffic`), the scores of each KPI value against its path, and the
roll-ups read from them. Until it commits, readers keep the previous run's marts, all of
them; a run failing half-way leaves them exactly as they were. The snapshot of what the run
reported is recorded next, once the published marts passed their checks.
"""

import datetime as dt

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Connection

from kpi_pipeline.checks.results import record_snapshot
from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import relation_key, table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.defs.sql_assets import (
    MARTS_LAYER,
    build_scope,
    model_asset_fields,
    model_metadata,
)
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.metrics.period_to_date import (
    KPI_PERIOD_TO_DATE,
    earliest_needed_day,
    period_to_date,
)
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
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.incremental import mark_built, models_hash
from kpi_pipeline.warehouse.incremental_scores import rescore_changed
from kpi_pipeline.warehouse.snapshots import prepare_snapshots, write_snapshot
from kpi_pipeline.warehouse.sql_models import SqlModel, run_model

KPI_VALUES_KEY = relation_key("marts", "kpi_values")
KPI_MEASURES_DAILY_KEY = relation_key("intermediate", "int_kpi_measures_daily")
PUBLISH_STEP = "publish_marts"

# Per KPI and grain, its latest complete whole-site period: what objectives roll up and
# what the scores' metadata shows (one row each, however long the history).
_LATEST_CLOSED_ALL = (
    "select * from (select s.*, row_number() over (partition by kpi_id, grain "
    "order by period_start desc) as latest_rank from {scores} as s "
    "where segment_type = 'all' and not is_partial) as ranked where latest_rank = 1"
)
# Per KPI and grain, its tactics in the KPI's latest complete period (what `rank_tactics`
# keeps of them all).
_LATEST_CLOSED_TACTICS = (
    "select * from (select s.*, max(period_start) over (partition by kpi_id, grain) "
    "as newest_start from {scores} as s where segment_type = 'tactic' and not is_partial) "
    "as latest where period_start = newest_start"
)


def build_scoring_assets(
    loaded: LoadedPlan, checks: AssetChecks, models: list[SqlModel]
) -> list[dg.AssetsDefinition]:
    confidence = loaded.plan.scoring.confidence
    goals = {kpi.id: Goal.of(kpi, confidence) for _, kpi in loaded.plan.iter_kpis()}
    directions = {kpi.id: kpi.direction.value for _, kpi in loaded.plan.iter_kpis()}
    objectives = {kpi.id: o.id for o, kpi in loaded.plan.iter_kpis()}
    fiscal_start = loaded.plan.fiscal_year_start_month
    layer_of = {m.name: m.layer for m in models}
    sql_hash = models_hash(m.template for m in models)
    mart_models = [m for m in models if m.layer == MARTS_LAYER]
    model_specs = [dg.AssetSpec(**model_asset_fields(m, layer_of)) for m in mart_models]
    scores_key = table_key(KPI_SCORES)
    scored_specs = [
        _scored_spec(
            KPI_SCORES,
            [KPI_VALUES_KEY, table_key(PLAN_KPIS)],
            "Each KPI value scored against the straight path from baseline to target.",
        ),
        _scored_spec(
            OBJECTIVE_STATUS,
            [scores_key],
            "Each objective's status from its KPIs' latest closed periods (weighted).",
        ),
        _scored_spec(
            TACTIC_RANKING,
            [scores_key],
            "Tactics ranked by how far behind the path they hold each KPI, worst first.",
        ),
        _scored_spec(
            KPI_PERIOD_TO_DATE,
            [scores_key, KPI_MEASURES_DAILY_KEY],
            "Each partial period so far against the same days of the previous period.",
        ),
    ]
    published = [spec.key for spec in (*model_specs, *scored_specs)]

    def publish_scores(wh: Warehouse, conn: Connection, full: bool, run_id: str):
        if not full and wh.relation_kind(conn, wh.schema_name("marts"), KPI_SCORES.name):
            # Only the rows the run's changed days can change (see incremental_scores).
            rescored, _ = rescore_changed(wh, goals, loaded.plan, joining=conn)
            build = f"incremental ({len(rescored)} rows re-scored)"
        else:
            values = wh.read_frame(f"select * from {wh.relation('marts', 'kpi_values')}", conn=conn)
            wh.ensure_table(KPI_SCORES, conn)
            wh.replace_all(conn, KPI_SCORES, scores_for_plan(values, goals, loaded.plan))
            build = "full"
        # Later runs compare their inputs with this build's (see warehouse/incremental.py).
        mark_built(wh, run_id, conn)
        relation = wh.relation(KPI_SCORES)
        span = wh.read_frame(
            "select min(period_start) as first_period_start, max(period_end) as last_period_end, "
            f"max(as_of_date) as as_of_date from {relation} where segment_type = 'all'",
            conn=conn,
        )
        row_count = wh.read_frame(f"select count(*) as n from {relation}", conn=conn)["n"][0]
        latest_all = _read_scores(wh, conn, _LATEST_CLOSED_ALL, "latest_rank")
        latest = latest_closed_rows(latest_all)
        covered = {
            column: str(pd.Timestamp(span[column][0]).date())
            for column in span.columns
            if pd.notna(span[column][0])
        }
        return dg.MaterializeResult(
            asset_key=table_key(KPI_SCORES),
            metadata={
                "dagster/row_count": int(row_count),
                "build": build,
                **covered,
                "latest_closed_statuses": dg.MetadataValue.json(latest_closed_statuses(latest_all)),
                # Numeric, under stable keys: the UI's Plots tab draws each across runs.
                **{key: dg.FloatMetadataValue(v) for key, v in latest_values(latest).items()},
                "preview": dg.MetadataValue.md(markdown_preview(latest)),
            },
        )

    def publish_rollups(wh: Warehouse, conn: Connection) -> list[dg.MaterializeResult]:
        latest_all = _read_scores(wh, conn, _LATEST_CLOSED_ALL, "latest_rank")
        tactics = _read_scores(wh, conn, _LATEST_CLOSED_TACTICS, "newest_start")
        frames = {
            OBJECTIVE_STATUS: objective_statuses(latest_all, loaded.plan),
            TACTIC_RANKING: rank_tactics(tactics, directions, objectives),
            KPI_PERIOD_TO_DATE: _period_to_date(wh, conn, fiscal_start),
        }
        results = []
        for spec, frame in frames.items():
            wh.ensure_table(spec, conn)
            wh.replace_all(conn, spec, frame)
            metadata: dict[str, object] = {"dagster/row_count": len(frame)}
            if spec is OBJECTIVE_STATUS:
                metadata["rollup"] = loaded.plan.scoring.rollup.value
            results.append(dg.MaterializeResult(asset_key=table_key(spec), metadata=metadata))
        return results

    @dg.multi_asset(
        name=PUBLISH_STEP,
        specs=[*model_specs, *scored_specs],
        check_specs=checks.specs(*published),
        description="Every mart (KPI values, unmapped traffic, scores, objective status, "
        "tactic ranking, period to date) built in ONE transaction: readers see all of them "
        "from the previous run until it commits, then all of them from this one.",
    )
    def publish_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scope = build_scope(context, wh, loaded.plan_hash, sql_hash)
        results: list[dg.MaterializeResult] = []
        with wh.transaction() as conn:
            for model in mart_models:
                rows = run_model(wh, model, layer_of, scope, joining=conn)
                results.append(
                    dg.MaterializeResult(
                        asset_key=relation_key(model.layer, model.name),
                        metadata=model_metadata(wh, model, scope, rows, conn),
                    )
                )
            results.append(publish_scores(wh, conn, scope.full, context.run_id))
            results.extend(publish_rollups(wh, conn))
        yield from results
        # Checked as published: a failure with ERROR severity holds what reads the marts
        # next (the snapshot, alerts, the report).
        yield from checks.evaluate(context, wh, *published)

    @dg.asset(
        key=table_key(KPI_SNAPSHOTS),
        check_specs=checks.specs(table_key(KPI_SNAPSHOTS)),
        deps=[table_key(KPI_SCORES)],
        group_name="scoring",
        kinds={"python", "pandas"},
        description="What every run reported (run id, time, plan hash), stored as changes.",
        metadata={"grain": KPI_SNAPSHOTS.grain},
    )
    def kpi_snapshots(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        now = dt.datetime.now(dt.UTC)
        prepare_snapshots(wh)
        with wh.transaction() as conn:
            written = write_snapshot(wh, conn, context.run_id, now, loaded.plan_hash)
            # What the run reported, so a later change to its answer is detectable (a check).
            record_snapshot(wh, conn, context.run_id, written.reported, written.value_sum, now)
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

    return [publish_marts, kpi_snapshots]


def _scored_spec(spec: TableSpec, deps: list[dg.AssetKey], description: str) -> dg.AssetSpec:
    """A mart computed in Python by the publishing step, in the "scoring" group."""
    return dg.AssetSpec(
        table_key(spec),
        deps=deps,
        group_name="scoring",
        kinds={"python", "pandas"},
        description=description,
        metadata={"grain": spec.grain},
    )


def _period_to_date(wh: Warehouse, conn: Connection, fiscal_start: int) -> pd.DataFrame:
    """Partial periods against the previous span: reads only the daily rows the spans need."""
    scores = _read_scores(wh, conn, "select * from {scores} where is_partial")
    since = earliest_needed_day(scores, fiscal_start)
    if since is None:
        return period_to_date(scores.iloc[0:0], scores.iloc[0:0], fiscal_start)
    relation = wh.relation("intermediate", "int_kpi_measures_daily")
    first = wh.read_frame(f"select min(date) as first_day from {relation}", conn=conn)
    daily = wh.read_frame(
        f"select * from {relation} where date >= :since", {"since": since}, conn=conn
    )
    first_day = None if daily.empty else pd.Timestamp(first["first_day"][0]).date()
    return period_to_date(scores, daily, fiscal_start, first_day)


def _read_scores(
    wh: Warehouse, conn: Connection, template: str, helper_column: str | None = None
) -> pd.DataFrame:
    """`kpi_scores` rows selected by `template` (its `{scores}`), dates as timestamps."""
    frame = wh.read_frame(template.format(scores=wh.relation(KPI_SCORES)), conn=conn)
    if helper_column is not None:
        frame = frame.drop(columns=[helper_column])
    for column in ("period_start", "period_end", "as_of_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame
