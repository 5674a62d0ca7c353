"""The dbt-like runner: models ordered by their refs, bad graphs rejected, dialects transpiled."""

from pathlib import Path

import pandas as pd
import pytest
import sqlglot

from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse
from kpi_pipeline.warehouse.sql_models import (
    SqlModelError,
    discover_models,
    render_model,
    run_model,
)

ROOT = Path(__file__).resolve().parents[2]
THINGS = TableSpec("raw", "things", (("name", "text"),), grain="one row per thing")


def _write(
    root: Path, relative: str, body: str, grain: str = "one row per thing", keys: str = "id"
) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"-- grain: {grain}\n" + (f"-- keys: {keys}\n" if keys else "")
    path.write_text(f"{header}{body}\n", encoding="utf-8")


def test_project_models_come_in_dependency_order():
    models = discover_models(ROOT / "dbt_like_sql")
    order = [m.name for m in models]
    for model in models:
        for ref in model.refs:
            assert order.index(ref) < order.index(model.name), f"{ref} must run before {model.name}"
    assert order[-1] == "kpi_values"
    assert {m.layer for m in models} == {"staging", "intermediate", "marts"}
    assert all(m.grain.startswith("one row per") for m in models)
    assert {m.name: m.materialized for m in models}["stg_csv__traffic"] == "view"


def test_refs_decide_order_not_file_names(tmp_path):
    # "a" sorts first but depends on "b": the runner must not run files alphabetically.
    _write(tmp_path, "marts/a.sql", "select * from {{ ref('b') }}")
    _write(tmp_path, "intermediate/b.sql", "select * from {{ ref('c') }}")
    _write(tmp_path, "staging/c.sql", "select * from {{ source('raw', 't') }}")
    assert [m.name for m in discover_models(tmp_path)] == ["c", "b", "a"]


def test_cycles_are_rejected_with_the_cycle_named(tmp_path):
    _write(tmp_path, "intermediate/a.sql", "select * from {{ ref('b') }}")
    _write(tmp_path, "intermediate/b.sql", "select * from {{ ref('a') }}")
    with pytest.raises(SqlModelError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        discover_models(tmp_path)


@pytest.mark.parametrize(
    ("relative", "body", "grain", "message"),
    [
        pytest.param(
            "marts/a.sql",
            "select * from {{ ref('nope') }}",
            "x",
            "ref\\('nope'\\) names no model",
            id="unknown-ref",
        ),
        pytest.param(
            "reports/a.sql", "select 1", "x", "models live under one of", id="unknown-layer"
        ),
        pytest.param(
            "marts/a.sql",
            "select {{ var('x') }}",
            "x",
            "cannot read template",
            id="unknown-template",
        ),
    ],
)
def test_bad_models_are_rejected(tmp_path, relative, body, grain, message):
    _write(tmp_path, relative, body, grain)
    with pytest.raises(SqlModelError, match=message):
        discover_models(tmp_path)


def test_a_model_without_a_grain_is_rejected(tmp_path):
    path = tmp_path / "marts" / "a.sql"
    path.parent.mkdir(parents=True)
    path.write_text("select 1\n", encoding="utf-8")
    with pytest.raises(SqlModelError, match="must state the model's grain"):
        discover_models(tmp_path)


def test_a_model_without_keys_is_rejected(tmp_path):
    # Keys are what the model's checks hold it to: a model cannot ship without them.
    _write(tmp_path, "marts/a.sql", "select 1 as id", keys="")
    with pytest.raises(SqlModelError, match=r"a.sql: the header must state the model's keys"):
        discover_models(tmp_path)


def test_keys_must_be_column_names(tmp_path):
    _write(tmp_path, "marts/a.sql", "select 1 as id", keys="id, lower(name)")
    with pytest.raises(SqlModelError, match=r"keys must be column names, not 'lower\(name\)'"):
        discover_models(tmp_path)


def test_project_models_state_their_keys():
    keys = {m.name: m.keys for m in discover_models(ROOT / "dbt_like_sql")}
    assert keys["kpi_values"] == ("kpi_id", "grain", "period_start", "segment_type", "segment")
    assert all(keys.values())


def _shape(sql: str, dialect: str) -> tuple[set[tuple[str, str]], list[str]]:
    """The relations a query reads (schema, name) and its CTEs, in order."""
    tree = sqlglot.parse_one(sql, read=dialect)
    ctes = [cte.alias for cte in tree.find_all(sqlglot.exp.CTE)]
    tables = {(t.db, t.name) for t in tree.find_all(sqlglot.exp.Table) if t.name not in ctes}
    return tables, ctes


@pytest.mark.parametrize("dialect", ["postgresql", "bigquery", "snowflake"])
def test_every_model_transpiles_and_parses_back(dialect):
    # Written once in DuckDB's dialect; each target's SQL must parse in that target's own
    # grammar and still read the same relations through the same CTEs.
    models = discover_models(ROOT / "dbt_like_sql")
    layer_of = {m.name: m.layer for m in models}
    target = "postgres" if dialect == "postgresql" else dialect
    for model in models:
        canonical = render_model(model, layer_of, "duckdb")
        sql = render_model(model, layer_of, dialect)
        assert "{{" not in sql
        parsed = sqlglot.parse_one(sql, read=target)
        assert parsed is not None and parsed.find(sqlglot.exp.Select) is not None
        assert _shape(sql, target) == _shape(canonical, "duckdb"), model.name


def test_refs_and_sources_render_to_schema_qualified_names():
    models = {m.name: m for m in discover_models(ROOT / "dbt_like_sql")}
    layer_of = {name: m.layer for name, m in models.items()}
    model = models["kpi_values"]
    sql = render_model(model, layer_of, "duckdb")
    assert model.refs and model.sources
    for ref in model.refs:
        assert f"{layer_of[ref]}.{ref}" in sql
    for schema, table in model.sources:
        assert f"{schema}.{table}" in sql
    assert "plan.calendar" in sql


def test_a_plans_models_read_and_name_only_that_plans_schemas():
    acme = Warehouse.from_url("duckdb:///:memory:", "acme")
    models = discover_models(ROOT / "dbt_like_sql")
    layer_of = {m.name: m.layer for m in models}
    for model in models:
        for dialect in ("duckdb", "postgresql"):
            sql = render_model(model, layer_of, dialect, acme.schema_name)
            target = "postgres" if dialect == "postgresql" else dialect
            tables, _ = _shape(sql, target)
            assert tables, model.name
            assert all(schema.startswith("acme_") for schema, _ in tables), (model.name, tables)
    model = {m.name: m for m in models}["kpi_values"]
    sql = render_model(model, layer_of, "duckdb", acme.schema_name)
    for ref in model.refs:
        assert f"acme_{layer_of[ref]}.{ref}" in sql
    for schema, table in model.sources:
        assert f"acme_{schema}.{table}" in sql
    assert "acme_plan.calendar" in sql


def test_run_model_builds_a_plans_model_from_its_own_tables_only(warehouse_url, tmp_path):
    _write(tmp_path, "staging/stg_things.sql", "select * from {{ source('raw', 'things') }}")
    _write(
        tmp_path,
        "marts/thing_count.sql",
        "select count(*) as n, min(name) as first_name from {{ ref('stg_things') }}",
    )
    models = discover_models(tmp_path)
    layer_of = {m.name: m.layer for m in models}
    unscoped = Warehouse.from_url(warehouse_url)
    try:
        for plan_id, names in (("acme", ["a1", "a2", "a3"]), ("beta", ["b1"])):
            wh = unscoped.for_plan(plan_id)
            wh.ensure_table(THINGS)
            with wh.transaction() as conn:
                wh.bulk_insert(conn, THINGS, pd.DataFrame({"name": names}))
        counts = {}
        for plan_id in ("acme", "beta"):
            wh = unscoped.for_plan(plan_id)
            assert [run_model(wh, model, layer_of) for model in models] == [None, 1]
            counts[plan_id] = wh.read_frame(wh.plan_sql("select * from marts.thing_count"))
        assert counts["acme"].to_dict("records") == [{"n": 3, "first_name": "a1"}]
        assert counts["beta"].to_dict("records") == [{"n": 1, "first_name": "b1"}]
        # Each plan's view and table live in its own schemas, none in the declared ones.
        assert unscoped.for_plan("acme").table_exists("staging", "stg_things")
        assert not unscoped.table_exists("staging", "stg_things")
        assert not unscoped.table_exists("marts", "thing_count")
    finally:
        unscoped.dispose()
