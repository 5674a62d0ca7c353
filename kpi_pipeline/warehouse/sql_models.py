"""A small dbt-like runner for `dbt_like_sql/`: discover models, order them, run them in SQL.

A model is one `.sql` file under a layer folder (`staging`, `intermediate`, `marts`). It
names its inputs with `{{ ref('model') }}` and `{{ source('schema', 'table') }}` and states
its grain and materialization in a header:

    -- grain: one row per kpi, grain, period and segment
    -- materialized: table

An incremental model (`-- materialized: incremental`) also names its partition
(`-- partition_by: date`, or `-- partition_by: grain, period_start`) and filters its inputs
with `{{ incremental_days('date') }}`, `{{ incremental_period_days('date') }}` or
`{{ incremental_periods('grain', 'period_start') }}`: on a full build each is `true`; on an
incremental one each keeps the run's changed days / affected periods (see
`kpi_pipeline/warehouse/incremental.py`), and the runner deletes the target's rows of those
partitions and inserts the recomputed ones in one transaction.

Models are written once in DuckDB's dialect and transpiled with sqlglot for other targets.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
import sqlglot
from sqlalchemy.engine import Connection

from kpi_pipeline.warehouse import incremental as incremental_sql
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.incremental import BuildScope

LAYERS = ("staging", "intermediate", "marts")
CANONICAL_DIALECT = "duckdb"

_REF = re.compile(r"\{\{\s*ref\(\s*'([a-z0-9_]+)'\s*\)\s*\}\}")
_SOURCE = re.compile(r"\{\{\s*source\(\s*'([a-z0-9_]+)'\s*,\s*'([a-z0-9_]+)'\s*\)\s*\}\}")
_HEADER = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.+?)\s*$")
_INCREMENTAL = re.compile(
    r"\{\{\s*(incremental_days|incremental_period_days|incremental_periods)\(\s*"
    r"'([a-z0-9_.]+)'\s*(?:,\s*'([a-z0-9_.]+)'\s*)?\)\s*\}\}"
)
# What each incremental model deletes before inserting its recomputed rows.
PARTITIONS = {("date",): "days", ("grain", "period_start"): "periods"}
_ANY_TEMPLATE = re.compile(r"\{\{.*?\}\}", re.S)
# sqlglot names some dialects differently from SQLAlchemy.
_SQLGLOT_DIALECTS = {"postgresql": "postgres", "duckdb": "duckdb"}


class SqlModelError(ValueError):
    """A model file that cannot be ordered or rendered (unknown ref, cycle, bad header)."""


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str
    path: Path
    template: str
    refs: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    materialized: Literal["view", "table", "incremental"]
    grain: str
    description: str
    # `-- preview_order_by: sessions desc` shows the model's first rows in the asset metadata.
    preview_order_by: str | None = None
    # `-- keys: kpi_id, grain, ...`: one row per combination, never null (checked each run).
    keys: tuple[str, ...] = ()
    # `-- partition_by: date`: the columns an incremental run replaces rows by.
    partition_by: tuple[str, ...] = ()

    @property
    def schema(self) -> str:
        return self.layer

    @property
    def relation(self) -> str:
        return f"{self.layer}.{self.name}"


def discover_models(root: Path) -> list[SqlModel]:
    """Every model under `root`, in dependency order (inputs before the models using them)."""
    models = [_parse_model(path, root) for path in sorted(root.glob("*/**/*.sql"))]
    return order_models(models)


def order_models(models: list[SqlModel]) -> list[SqlModel]:
    """Topological order by `ref`s; unknown refs, duplicate names and cycles are errors."""
    by_name: dict[str, SqlModel] = {}
    for model in models:
        if model.name in by_name:
            raise SqlModelError(
                f"two models are named {model.name!r}: {by_name[model.name].path} and {model.path}"
            )
        by_name[model.name] = model
    for model in models:
        for ref in model.refs:
            if ref not in by_name:
                raise SqlModelError(f"{model.path}: ref('{ref}') names no model")
    sorter = graphlib.TopologicalSorter({m.name: set(m.refs) for m in models})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise SqlModelError(f"models depend on each other in a cycle: {cycle}") from None
    return [by_name[name] for name in order]


def _parse_model(path: Path, root: Path) -> SqlModel:
    layer = path.relative_to(root).parts[0]
    if layer not in LAYERS:
        raise SqlModelError(f"{path}: models live under one of {', '.join(LAYERS)}")
    template = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    for line in template.splitlines():
        match = _HEADER.match(line)
        if not match:
            break
        header[match.group(1)] = match.group(2)
    if "grain" not in header:
        raise SqlModelError(f"{path}: the header must state the model's grain (-- grain: ...)")
    materialized = header.get("materialized", "view" if layer == "staging" else "table")
    if materialized not in ("view", "table", "incremental"):
        raise SqlModelError(
            f"{path}: materialized must be view, table or incremental, not {materialized!r}"
        )
    partition_by = tuple(p.strip() for p in header.get("partition_by", "").split(",") if p.strip())
    if materialized == "incremental" and partition_by not in PARTITIONS:
        choices = " or ".join(", ".join(p) for p in PARTITIONS)
        raise SqlModelError(f"{path}: an incremental model is partitioned by {choices}")
    if materialized != "incremental" and (partition_by or _INCREMENTAL.search(template)):
        raise SqlModelError(f"{path}: only an incremental model has a partition and its filters")
    leftover = _ANY_TEMPLATE.findall(_INCREMENTAL.sub("", _SOURCE.sub("", _REF.sub("", template))))
    if leftover:
        raise SqlModelError(f"{path}: cannot read template {leftover[0]!r}")
    return SqlModel(
        name=path.stem,
        layer=layer,
        path=path,
        template=template,
        refs=tuple(dict.fromkeys(_REF.findall(template))),
        sources=tuple(dict.fromkeys(_SOURCE.findall(template))),
        materialized=materialized,  # type: ignore[arg-type]
        grain=header["grain"],
        description=header.get("description", ""),
        preview_order_by=header.get("preview_order_by"),
        keys=_keys(path, header.get("keys")),
        partition_by=partition_by,
    )


def _keys(path: Path, text: str | None) -> tuple[str, ...]:
    if text is None:
        raise SqlModelError(f"{path}: the header must state the model's keys (-- keys: a, b)")
    keys = tuple(part.strip() for part in text.split(","))
    bad = [key for key in keys if not re.fullmatch(r"[a-z_][a-z0-9_]*", key)]
    if bad:
        raise SqlModelError(f"{path}: keys must be column names, not {bad[0]!r}")
    return keys


def render_model(
    model: SqlModel,
    layer_of: dict[str, str],
    dialect: str,
    schema_of: Callable[[str], str] = str,
    incremental: Callable[[str, str, str | None], str] | None = None,
) -> str:
    """The model's SELECT with refs and sources resolved, in the target `dialect`.

    `schema_of` maps a declared schema to the physical one (a plan's own: `raw` ->
    `demo_raw`), so a plan's models read only that plan's tables. `incremental` renders the
    incremental filters (function name, columns); without it (a full build) they are `true`.
    """
    sql = _REF.sub(lambda m: f"{schema_of(layer_of[m.group(1)])}.{m.group(1)}", model.template)
    sql = _SOURCE.sub(lambda m: f"{schema_of(m.group(1))}.{m.group(2)}", sql)
    sql = _INCREMENTAL.sub(
        lambda m: (
            "true" if incremental is None else incremental(m.group(1), m.group(2), m.group(3))
        ),
        sql,
    )
    target = _SQLGLOT_DIALECTS.get(dialect, dialect)
    if target == CANONICAL_DIALECT:
        return sql
    return ";\n".join(sqlglot.transpile(sql, read=CANONICAL_DIALECT, write=target, pretty=True))


def run_model(
    warehouse: Warehouse,
    model: SqlModel,
    layer_of: dict[str, str],
    scope: BuildScope | None = None,
    joining: Connection | None = None,
) -> int | None:
    """(Re)build one model in one transaction; returns the row count of a table model.

    An incremental model with an incremental `scope` (and an existing table) only replaces
    the rows of the scope's partitions; otherwise every model is rebuilt whole. `joining`
    builds it inside that (publishing) transaction: an existing table of the same columns
    then keeps its relation and has its rows replaced, so readers go on reading the old
    rows until the publish commits (a drop would make them wait for it).
    """
    schema = warehouse.schema_name(model.schema)
    relation = warehouse.relation(model.schema, model.name)
    with warehouse.transaction(joining) as conn:
        # Two runs rebuilding the same model take turns (PostgreSQL advisory lock); without
        # it the second would drop the relation the first is re-creating.
        warehouse.serialize_writes(conn, f"{schema}.{model.name}")
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        existing = warehouse.relation_kind(conn, schema, model.name)
        if (
            model.materialized == "incremental"
            and scope is not None
            and not scope.full
            and existing == "table"
        ):
            return _merge_partitions(warehouse, conn, model, layer_of, relation)
        sql = render_model(model, layer_of, warehouse.dialect, warehouse.schema_name)
        if joining is not None and existing == "table" and model.materialized != "view":
            replaced = _replace_rows(warehouse, conn, model, relation, sql)
            if replaced is not None:
                return replaced
        if existing is not None:
            # CASCADE would silently drop dependants; models are rebuilt in order instead.
            conn.exec_driver_sql(f"drop {existing} {relation}")
        kind = "view" if model.materialized == "view" else "table"
        conn.exec_driver_sql(f"create {kind} {relation} as\n{sql}")
        if kind == "table":
            return int(conn.exec_driver_sql(f"select count(*) from {relation}").scalar_one())
    return None


def _replace_rows(
    warehouse: Warehouse, conn: Connection, model: SqlModel, relation: str, sql: str
) -> int | None:
    """Replace every row of the existing table in place; None when its columns changed."""
    columns = warehouse.column_names(conn, warehouse.schema_name(model.schema), model.name)
    result = conn.exec_driver_sql(f"select * from (\n{sql}\n) as rebuilt limit 0")
    new_columns = list(result.keys())
    result.close()
    if new_columns != columns:
        return None
    quoted = ", ".join(warehouse.engine.dialect.identifier_preparer.quote(c) for c in columns)
    conn.exec_driver_sql(f"delete from {relation}")
    conn.exec_driver_sql(
        f"insert into {relation} ({quoted})\nselect {quoted} from (\n{sql}\n) as rebuilt"
    )
    return int(conn.exec_driver_sql(f"select count(*) from {relation}").scalar_one())


def _merge_partitions(
    warehouse: Warehouse, conn, model: SqlModel, layer_of: dict[str, str], relation: str
) -> int:
    """Delete the target's rows of the run's partitions and insert them recomputed."""

    def incremental(function: str, first: str, second: str | None) -> str:
        if function == "incremental_days":
            return incremental_sql.days_condition(warehouse, first)
        if function == "incremental_period_days":
            return incremental_sql.period_days_condition(warehouse, first)
        if second is None:
            raise SqlModelError(f"{model.path}: incremental_periods needs grain and period_start")
        return incremental_sql.periods_condition(warehouse, first, second)

    sql = render_model(model, layer_of, warehouse.dialect, warehouse.schema_name, incremental)
    if PARTITIONS[model.partition_by] == "days":
        condition = incremental_sql.days_condition(warehouse, model.partition_by[0])
    else:
        condition = incremental_sql.periods_condition(warehouse, *model.partition_by)
    conn.exec_driver_sql(f"delete from {relation} where {condition}")
    columns = ", ".join(
        warehouse.engine.dialect.identifier_preparer.quote(c)
        for c in warehouse.column_names(conn, warehouse.schema_name(model.schema), model.name)
    )
    conn.exec_driver_sql(
        f"insert into {relation} ({columns})\nselect {columns} from (\n{sql}\n) as recomputed"
    )
    return int(conn.exec_driver_sql(f"select count(*) from {relation}").scalar_one())
