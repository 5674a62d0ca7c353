"""Asset keys follow table names: `schema/table`, so the UI reads like the warehouse."""

import dagster as dg

from kpi_pipeline.lib.tables import TableSpec


def table_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.name])


def relation_key(schema: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([schema, name])


# Source assets run after the plan's tables: the plan's run is recorded (and a second plan
# claiming the same id refused) before any of its rows are written.
PLAN_SOURCES_KEY = dg.AssetKey(["plan", "sources"])
