"""`kpi-pipeline grant-readonly ROLE`: the role reads the marts and can do nothing else."""

from __future__ import annotations

import psycopg
import pytest
from demo_project import DemoProject, step_failures
from psycopg import errors

from kpi_pipeline.cli import main


@pytest.fixture(scope="module")
def analyst(tmp_path_factory, postgres_server):
    """A demo warehouse on PostgreSQL, `grant-readonly` given to a fresh login role, then
    a second run, which re-creates `marts.kpi_values`: the grant must survive that."""
    database = postgres_server.create_database()
    url = postgres_server.url_for(database)
    role = postgres_server.create_role("kpi_reader")
    project = DemoProject.create(tmp_path_factory.mktemp("grants"), url)
    assert project.run().success
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KPI_WAREHOUSE_URL", url)
        assert main(["grant-readonly", role]) == 0
    again = project.run()
    assert again.success, step_failures(again)
    conninfo = psycopg.conninfo.make_conninfo(
        postgres_server.url_for(database, user=role).replace("postgresql+psycopg", "postgresql")
    )
    yield conninfo
    postgres_server.drop_database(database)


@pytest.mark.parametrize(
    "table", ["marts.kpi_values", "marts.kpi_scores", "marts.kpi_snapshots"], ids=str
)
def test_the_role_reads_every_mart(analyst, table):
    with psycopg.connect(analyst) as conn:
        assert conn.execute(f"select count(*) from {table}").fetchone()[0] > 0


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("insert into marts.kpi_scores (kpi_id) values ('x')", id="insert"),
        pytest.param("delete from marts.kpi_snapshots", id="delete-snapshots"),
        pytest.param("update marts.kpi_scores set status = 'achieved'", id="update"),
        pytest.param("truncate marts.kpi_values", id="truncate"),
        pytest.param("create table marts.mine (x int)", id="ddl-create-in-marts"),
        pytest.param("drop table marts.kpi_scores", id="ddl-drop"),
        pytest.param("alter table marts.kpi_scores add column y int", id="ddl-alter"),
        pytest.param("create table public.mine (x int)", id="ddl-create-in-public"),
        pytest.param("select * from raw.csv_traffic", id="read-raw"),
        pytest.param("select * from raw.quarantine", id="read-quarantine"),
        pytest.param("select * from staging.stg_csv__traffic", id="read-staging"),
        pytest.param("select * from plan.kpis", id="read-plan"),
    ],
)
def test_the_role_can_do_nothing_else(analyst, statement):
    with psycopg.connect(analyst) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


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
