"""`kpi-pipeline grant-readonly ROLE`: the role reads the plan's marts and can do nothing else."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest
from demo_project import DemoProject, step_failures
from psycopg import errors

from kpi_pipeline.cli import main
from kpi_pipeline.lib.tables import TableSpec
from kpi_pipeline.warehouse.engine import Warehouse

# A table of another plan's marts, on the same server.
OTHER_MARTS = TableSpec("marts", "kpi_scores", (("kpi_id", "text"),), "one row per kpi")


@pytest.fixture(scope="module")
def analyst(tmp_path_factory, postgres_server):
    """A demo warehouse on PostgreSQL, `grant-readonly` given to a fresh login role, then
    a second run, which re-creates `demo_marts.kpi_values`: the grant must survive that.
    Another plan (`other`) has marts of its own in the same database."""
    database = postgres_server.create_database()
    url = postgres_server.url_for(database)
    role = postgres_server.create_role("kpi_reader")
    project = DemoProject.create(tmp_path_factory.mktemp("grants"), url)
    assert project.run().success
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KPI_WAREHOUSE_URL", url)
        assert main(["grant-readonly", role, "--plan", str(project.plan_path)]) == 0
    other = Warehouse.from_url(url, "other")
    try:
        other.ensure_table(OTHER_MARTS)
        with other.transaction() as conn:
            other.bulk_insert(conn, OTHER_MARTS, pd.DataFrame({"kpi_id": ["theirs"]}))
    finally:
        other.dispose()
    again = project.run()
    assert again.success, step_failures(again)
    conninfo = psycopg.conninfo.make_conninfo(
        postgres_server.url_for(database, user=role).replace("postgresql+psycopg", "postgresql")
    )
    yield conninfo
    postgres_server.drop_database(database)


@pytest.mark.parametrize(
    "table", ["demo_marts.kpi_values", "demo_marts.kpi_scores", "demo_marts.kpi_snapshots"], ids=str
)
def test_the_role_reads_every_mart(analyst, table):
    with psycopg.connect(analyst) as conn:
        assert conn.execute(f"select count(*) from {table}").fetchone()[0] > 0


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("insert into demo_marts.kpi_scores (kpi_id) values ('x')", id="insert"),
        pytest.param("delete from demo_marts.kpi_snapshots", id="delete-snapshots"),
        pytest.param("update demo_marts.kpi_scores set status = 'achieved'", id="update"),
        pytest.param("truncate demo_marts.kpi_values", id="truncate"),
        pytest.param("create table demo_marts.mine (x int)", id="ddl-create-in-marts"),
        pytest.param("drop table demo_marts.kpi_scores", id="ddl-drop"),
        pytest.param("alter table demo_marts.kpi_scores add column y int", id="ddl-alter"),
        pytest.param("create table public.mine (x int)", id="ddl-create-in-public"),
        pytest.param("select * from demo_raw.csv_traffic", id="read-raw"),
        pytest.param("select * from demo_raw.quarantine", id="read-quarantine"),
        pytest.param("select * from demo_staging.stg_csv__traffic", id="read-staging"),
        pytest.param("select * from demo_plan.kpis", id="read-plan"),
        pytest.param("select * from other_marts.kpi_scores", id="read-another-plans-marts"),
        pytest.param("select * from meta.plans", id="read-meta"),
    ],
)
def test_the_role_can_do_nothing_else(analyst, statement):
    with psycopg.connect(analyst) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_a_plan_scoped_grant_covers_that_plans_marts_only(
    postgres_server, postgres_database, postgres_url
):
    acme = Warehouse.from_url(postgres_url, "acme")
    beta = acme.for_plan("beta")
    raw = TableSpec("raw", "kpi_scores", (("kpi_id", "text"),), "one row per kpi")
    try:
        for wh, spec in ((acme, OTHER_MARTS), (beta, OTHER_MARTS), (acme, raw)):
            wh.ensure_table(spec)
            with wh.transaction() as conn:
                wh.bulk_insert(conn, spec, pd.DataFrame({"kpi_id": [wh.plan_id]}))
        role = postgres_server.create_role("kpi_scoped")
        statements = acme.grant_readonly(role)
    finally:
        acme.dispose()
    granted = [s for s in statements if " schema " in s]
    assert granted and all("acme_marts" in s for s in granted), statements
    conninfo = psycopg.conninfo.make_conninfo(
        postgres_server.url_for(postgres_database, user=role).replace(
            "postgresql+psycopg", "postgresql"
        )
    )
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("select kpi_id from acme_marts.kpi_scores").fetchall() == [("acme",)]
    for other in ("beta_marts.kpi_scores", "acme_raw.kpi_scores"):
        with psycopg.connect(conninfo) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"select * from {other}")


def test_a_role_name_carrying_sql_is_refused_before_reaching_the_server(
    monkeypatch, capsys, postgres_url
):
    monkeypatch.setenv("KPI_WAREHOUSE_URL", postgres_url)
    assert main(["grant-readonly", "reader; drop schema marts cascade"]) == 2
    assert "is not a plain SQL identifier" in capsys.readouterr().err


def test_a_missing_role_is_named(monkeypatch, capsys, postgres_url):
    monkeypatch.setenv("KPI_WAREHOUSE_URL", postgres_url)
    assert main(["grant-readonly", "nobody_here"]) == 2
    assert "role 'nobody_here' does not exist: create it first" in capsys.readouterr().err


def test_duckdb_has_no_roles_to_grant(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("KPI_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'kpi.duckdb'}")
    assert main(["grant-readonly", "reader"]) == 2
    assert "grant-readonly needs PostgreSQL" in capsys.readouterr().err
