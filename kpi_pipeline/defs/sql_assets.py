"""One asset per model in `dbt_like_sql/`, with dependencies read from its refs and sources."""

from pathlib import Path

import dagster as dg

from kpi_pipeline.defs.keys import relation_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.warehouse.sql_models import SqlModel, discover_models, run_model

# Staging stays its own group; the layers that compute KPIs read as one concept.
_GROUP_OF_LAYER = {"staging": "staging", "intermediate": "kpis", "marts": "kpis"}


def build_sql_model_assets(models_root: Path) -> list[dg.AssetsDefinition]:
    models = discover_models(models_root)
    layer_of = {m.name: m.layer for m in models}
    return [_model_asset(model, layer_of) for model in models]


def _model_asset(model: SqlModel, layer_of: dict[str, str]) -> dg.AssetsDefinition:
    deps = [relation_key(layer_of[ref], ref) for ref in model.refs] + [
        relation_key(schema, table) for schema, table in model.sources
    ]

    @dg.asset(
        key=relation_key(model.layer, model.name),
        deps=deps,
        group_name=_GROUP_OF_LAYER[model.layer],
        kinds={"sql"},
        description=model.description or f"SQL model {model.name}.",
        metadata={
            "grain": model.grain,
            "materialized": model.materialized,
            "sql_file": str(model.path),
        },
    )
    def _run(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        wh = warehouse.get()
        rows = run_model(wh, model, layer_of)
        relation = wh.relation(model.schema, model.name)
        metadata: dict[str, object] = {"relation": relation}
        if rows is not None:
            metadata["dagster/row_count"] = rows
        if model.preview_order_by:
            preview = wh.read_frame(
                f"select * from {relation} order by {model.preview_order_by} limit 10"
            )
            metadata["preview"] = dg.MetadataValue.md(preview.to_markdown(index=False))
        return dg.MaterializeResult(metadata=metadata)

    return _run
