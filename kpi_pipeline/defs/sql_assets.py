"""One asset per model in `dbt_like_sql/`, with dependencies read from its refs and sources."""

import datetime as dt

import dagster as dg
from sqlalchemy.engine import Connection

from kpi_pipeline.checks.suites import MAIN_TABLE
from kpi_pipeline.defs.check_assets import AssetChecks
from kpi_pipeline.defs.keys import relation_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.incremental import (
    FULL_REFRESH_TAG,
    BuildScope,
    models_hash,
    run_scope,
)
from kpi_pipeline.warehouse.sql_models import SqlModel, run_model

MARTS_LAYER = "marts"

# Staging stays its own group; the layers that compute KPIs read as one concept.
_GROUP_OF_LAYER = {"staging": "staging", "intermediate": "kpis", "marts": "kpis"}


def build_sql_model_assets(
    models: list[SqlModel], checks: AssetChecks
) -> list[dg.AssetsDefinition]:
    """One asset per staging and intermediate model; the marts' models are built by the
    publishing step (see `scoring_assets`), all marts in one transaction."""
    layer_of = {m.name: m.layer for m in models}
    sql_hash = models_hash(m.template for m in models)
    return [
        _model_asset(model, layer_of, checks, sql_hash)
        for model in models
        if model.layer != MARTS_LAYER
    ]


def model_asset_fields(model: SqlModel, layer_of: dict[str, str]) -> dict[str, object]:
    """What the UI shows of a model's asset (key, inputs, group, description, metadata):
    the same whether it is its own step or built by the publishing step."""
    return {
        "key": relation_key(model.layer, model.name),
        "deps": model_deps(model, layer_of),
        "group_name": _GROUP_OF_LAYER[model.layer],
        "kinds": {"sql"},
        "description": model.description or f"SQL model {model.name}.",
        "metadata": {
            "grain": model.grain,
            "materialized": model.materialized,
            "sql_file": str(model.path),
        },
    }


def model_deps(model: SqlModel, layer_of: dict[str, str]) -> list[dg.AssetKey]:
    """The assets a model reads: its refs, and the writers of the raw tables it reads."""
    return [relation_key(layer_of[ref], ref) for ref in model.refs] + [
        key
        for schema, table in model.sources
        for key in _WRITTEN_BY.get((schema, table), [relation_key(schema, table)])
    ]


def build_scope(
    context: dg.AssetExecutionContext, wh: Warehouse, plan_hash: str, sql_hash: str
) -> BuildScope:
    """The run's incremental scope (computed by its first caller, read back by the rest)."""
    tags = dict(context.run.tags)
    return run_scope(
        wh,
        context.run_id,
        plan_hash=plan_hash,
        sql_hash=sql_hash,
        run_days=run_days_of(tags),
        full_refresh=tags.get(FULL_REFRESH_TAG) == "1",
    )


def run_days_of(tags: dict[str, str]) -> tuple[dt.date, dt.date] | None:
    """The run's partition days from its tags (a range, or one partition), if any."""
    first = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    last = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    if not first or not last:
        return None
    return dt.date.fromisoformat(first), dt.date.fromisoformat(last)


# Tables several source assets write (a Dagster asset has one writer): a model reading them
# depends on those writers instead.
# Both are written alongside each source kind's main raw table: the coverage by its loader,
# the check flags by its data checks, which run in that table's own step.
_SOURCE_WRITERS = [relation_key(*table) for table in MAIN_TABLE.values()]
_WRITTEN_BY = {("raw", "source_days"): _SOURCE_WRITERS, ("raw", "check_flags"): _SOURCE_WRITERS}


def _model_asset(
    model: SqlModel, layer_of: dict[str, str], checks: AssetChecks, sql_hash: str
) -> dg.AssetsDefinition:
    fields = model_asset_fields(model, layer_of)
    key = fields["key"]

    @dg.asset(**fields, check_specs=checks.specs(key))
    def _run(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        wh = warehouse.get()
        scope = None
        if model.materialized == "incremental":
            scope = build_scope(context, wh, checks.loaded.plan_hash, sql_hash)
        rows = run_model(wh, model, layer_of, scope)
        yield dg.MaterializeResult(metadata=model_metadata(wh, model, scope, rows))
        yield from checks.evaluate(context, wh, key)

    return _run


def model_metadata(
    wh: Warehouse,
    model: SqlModel,
    scope: BuildScope | None,
    rows: int | None,
    conn: Connection | None = None,
) -> dict[str, object]:
    relation = wh.relation(model.schema, model.name)
    metadata: dict[str, object] = {"relation": relation}
    if scope is not None:
        metadata["build"] = "full" if scope.full else "incremental"
        metadata["build_reason"] = scope.reason
        metadata["changed_days"] = scope.changed_days
    if rows is not None:
        metadata["dagster/row_count"] = rows
    if model.preview_order_by:
        preview = wh.read_frame(
            f"select * from {relation} order by {model.preview_order_by} limit 10", conn=conn
        )
        metadata["preview"] = dg.MetadataValue.md(preview.to_markdown(index=False))
    return metadata
