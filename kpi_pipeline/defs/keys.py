"""Asset keys follow table names: `schema/table`, so the UI reads like the warehouse."""

import dagster as dg

from kpi_pipeline.lib.tables import TableSpec


def table_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.name])


def relation_key(schema: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([schema, name])
