"""Plans in the warehouse: which plan owns which schemas, and explicit pruning of the rows
of sources a plan no longer declares (the SQL models already ignore them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from kpi_pipeline.loading.email import EMAIL_TABLES
from kpi_pipeline.loading.errors import LoadError
from kpi_pipeline.loading.files import FILE_TABLES
from kpi_pipeline.loading.ga4 import ALL_GA4_TABLES
from kpi_pipeline.plan.loader import LoadedPlan
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.migrations import PLANS
from kpi_pipeline.warehouse.partitions import Match

# Every raw table keyed by source_id: what `prune` looks through.
SOURCE_TABLES = tuple(dict.fromkeys((*FILE_TABLES, *ALL_GA4_TABLES, *EMAIL_TABLES)))


def record_plan_run(wh: Warehouse, loaded: LoadedPlan, run_id: str, now: dt.datetime) -> None:
    """Upsert the plan's row in `meta.plans` (id, hash, path, as last run).

    A plan whose id comes from its file name (no `id:` key) must keep running from the same
    file: another file with the same name would otherwise write into the same schemas.
    """
    wh.ensure_table(PLANS)
    with wh.transaction() as conn:
        wh.serialize_writes(conn, PLANS)
        table = wh.table(PLANS)
        previous = conn.execute(
            sa.select(table.c.plan_path, table.c.id_declared).where(
                table.c.plan_id == loaded.plan_id
            )
        ).first()
        path = str(loaded.path)
        if (
            previous is not None
            and previous.plan_path != path
            and not (loaded.plan.id and previous.id_declared)
        ):
            raise LoadError(
                f"plan id {loaded.plan_id!r} belongs to {previous.plan_path}, which last ran "
                f"against this warehouse; {path} would write into the same schemas "
                f"({wh.schema_name('raw')}, ...). Give this plan its own id (a top-level "
                f"`id:` key), or if it is the same plan moved, add `id: {loaded.plan_id}` to it."
            )
        frame = pd.DataFrame(
            [
                {
                    "plan_id": loaded.plan_id,
                    "plan_hash": loaded.plan_hash,
                    "plan_path": path,
                    "id_declared": loaded.plan.id is not None,
                    "schema_prefix": f"{loaded.plan_id}_",
                    "last_run_id": run_id,
                    "last_run_at": now,
                }
            ]
        )
        wh.replace_rows(conn, PLANS, frame, Match({"plan_id": loaded.plan_id}))


@dataclass(frozen=True)
class PrunedRows:
    table: str
    source_id: str
    rows: int


def prune_undeclared(wh: Warehouse, loaded: LoadedPlan, dry_run: bool = False) -> list[PrunedRows]:
    """Delete (or with `dry_run` only count) the plan's raw rows of sources it no longer
    declares, table by table; returns what was found."""
    declared = [source_id for source_id, _, _ in loaded.plan.sources.roles()]
    found: list[PrunedRows] = []
    with wh.transaction() as conn:
        for spec in SOURCE_TABLES:
            if not wh.table_exists(spec.schema, spec.name):
                continue
            table = wh.table(spec)
            counts = conn.execute(
                sa.select(table.c.source_id, sa.func.count())
                .where(table.c.source_id.notin_(declared) if declared else sa.true())
                .group_by(table.c.source_id)
                .order_by(table.c.source_id)
            ).all()
            for source_id, rows in counts:
                found.append(PrunedRows(wh.relation(spec), source_id, int(rows)))
                if not dry_run:
                    wh.delete_rows(conn, spec, Match({"source_id": source_id}))
    return found
