"""Check results analysts can query (`marts.check_results`), the source days failed checks
flag (`raw.check_flags`, joined into the KPIs' quality flags so alerts hold them), and the
ledger that makes snapshots checkably append-only (`marts.snapshot_ledger`)."""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from kpi_pipeline.checks.gx_runner import Outcome
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.partitions import Match

CHECK_RESULTS = TableSpec(
    "marts",
    "check_results",
    (
        ("run_id", "text"),
        ("checked_at", "timestamp"),
        ("asset", "text"),
        ("check_name", "text"),
        ("severity", "text"),
        ("passed", "boolean"),
        ("observed_value", "text"),
        ("failing_rows", "bigint"),
        ("checked_rows", "bigint"),
        ("description", "text"),
        ("sample_json", "text"),
    ),
    grain="one row per run, asset and check",
    keys=("run_id", "asset", "check_name"),
    indexes=(("run_id",),),
)

CHECK_FLAGS = TableSpec(
    "raw",
    "check_flags",
    (
        ("source_id", "text"),
        ("date", "date"),
        ("asset", "text"),
        ("check_name", "text"),
        ("severity", "text"),
        ("run_id", "text"),
    ),
    grain="one row per source, day, asset and check that failed on its rows (as last checked)",
    keys=("source_id", "date", "asset", "check_name"),
)

SNAPSHOT_LEDGER = TableSpec(
    "marts",
    "snapshot_ledger",
    (
        ("run_id", "text"),
        ("row_count", "bigint"),
        ("value_sum", "double"),
        ("written_at", "timestamp"),
    ),
    grain="one row per run that wrote snapshots: how many rows and their sum, as written",
    keys=("run_id",),
)


# The check tables each warehouse object has made sure of: a run checks in ~30 steps, and
# each `ensure_table` reads the catalog and takes the DDL lock.
_ensured: weakref.WeakKeyDictionary[Warehouse, set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class CheckedDays:
    """The flags an asset's `checks` set on days `first`..`last`: what a run re-decides."""

    asset: str
    checks: Sequence[str]
    first: dt.date
    last: dt.date

    def condition(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(
            table.c.asset == self.asset,
            table.c.check_name.in_(list(self.checks)),
            table.c.date.between(self.first, self.last),
        )

    def scope(self) -> dict[str, str]:
        return {"asset": self.asset, "first": str(self.first), "last": str(self.last)}


def record(
    wh: Warehouse,
    outcomes: list[Outcome],
    run_id: str,
    first: dt.date,
    last: dt.date,
    now: dt.datetime,
) -> None:
    """Write the outcomes and re-decide the run's days' flags, in one transaction."""
    ensured = _ensured.setdefault(wh, set())
    for spec in (CHECK_RESULTS, CHECK_FLAGS):
        if spec.name not in ensured:  # once per warehouse object (a run's), not per step
            wh.ensure_table(spec)
    results = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "checked_at": now,
                "asset": "/".join(o.asset),
                "check_name": o.check,
                "severity": o.severity,
                "passed": o.passed,
                "observed_value": o.observed,
                "failing_rows": o.failing_rows,
                "checked_rows": o.checked_rows,
                "description": o.description,
                "sample_json": None
                if o.sample.empty
                else o.sample.to_json(orient="records", date_format="iso"),
            }
            for o in outcomes
        ],
        columns=CHECK_RESULTS.column_names,
    )
    flagged = [
        o.flagged.assign(
            asset="/".join(o.asset), check_name=o.check, severity=o.severity, run_id=run_id
        )
        for o in outcomes
        if not o.passed and not o.flagged.empty
    ]
    flags = (
        pd.concat(flagged, ignore_index=True).drop_duplicates(
            ["source_id", "date", "asset", "check_name"]
        )
        if flagged
        else pd.DataFrame(columns=CHECK_FLAGS.column_names)
    )
    if not flags.empty:
        flags["date"] = pd.to_datetime(flags["date"]).astype("datetime64[s]")
    with wh.transaction() as conn:
        assets = sorted({"/".join(o.asset) for o in outcomes})
        for asset in assets:
            wh.replace_rows(
                conn,
                CHECK_RESULTS,
                results[results["asset"] == asset],
                Match({"run_id": run_id, "asset": asset}),
            )
            asset_checks = sorted({o.check for o in outcomes if "/".join(o.asset) == asset})
            mine = flags[flags["asset"] == asset]
            wh.replace_rows(
                conn,
                CHECK_FLAGS,
                mine[CHECK_FLAGS.column_names],
                CheckedDays(asset, asset_checks, first, last),
            )
    ensured.update((CHECK_RESULTS.name, CHECK_FLAGS.name))


def record_snapshot(
    wh: Warehouse, conn, run_id: str, row_count: int, value_sum: float, now: dt.datetime
) -> None:
    """The ledger row of a run's snapshot (its rows, and their value + numerator summed),
    written with it."""
    wh.ensure_table(SNAPSHOT_LEDGER, conn)
    frame = pd.DataFrame(
        [{"run_id": run_id, "row_count": row_count, "value_sum": value_sum, "written_at": now}]
    )
    wh.replace_rows(conn, SNAPSHOT_LEDGER, frame, Match({"run_id": run_id}))
