"""Known failures of the command line: one line on stderr, a documented exit code, no traceback.

Each case runs the real entry point in a subprocess (`python -m kpi_pipeline.cli`), as a
person at a terminal would, and asserts the whole of stderr.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kpi_pipeline.metrics.periods import last_closed_day


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kpi_pipeline.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(done: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a refused command (after asserting code and no traceback)."""
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def project(tiny_project):
    return tiny_project


def test_a_day_before_the_plans_history_is_refused(project):
    # history_start of the tiny plan is 2026-01-05.
    done = cli("run", "--plan", str(project.plan_path), "--date", "2026-01-04", cwd=project.root,
               env={"KPI_WAREHOUSE_URL": project.warehouse_url})  # fmt: skip
    assert one_line(done, 2) == (
        f"kpi-pipeline: --date 2026-01-04 is before the plan's history_start 2026-01-05 "
        f"({project.plan_path}): runs load days from 2026-01-05 on (or move history_start "
        "earlier in the plan)"
    )
    assert not Path(project.warehouse_url.removeprefix("duckdb:///")).exists()


@pytest.mark.parametrize(
    "when",
    [["--date", "2099-01-01"], ["--from", "2026-01-05", "--to", "2099-01-01"]],
    ids=["date", "range-end"],
)
def test_a_day_not_over_yet_is_refused_not_run(project, when):
    done = cli("run", "--plan", str(project.plan_path), *when, cwd=project.root,
               env={"KPI_WAREHOUSE_URL": project.warehouse_url})  # fmt: skip
    yesterday = last_closed_day(dt.datetime.now(dt.UTC), "America/Toronto")
    assert one_line(done, 2) == (
        f"kpi-pipeline: {when[-2]} 2099-01-01 is not over yet in the plan's time zone "
        f"America/Toronto: the last day a run can load is {yesterday}"
    )


def test_a_busy_duckdb_file_names_the_process_holding_it(project):
    path = project.root / "kpi.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, duckdb
            conn = duckdb.connect({str(path)!r})
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        done = cli("run", "--plan", str(project.plan_path), "--date", "2026-01-05",
                   cwd=project.root, env={"KPI_WAREHOUSE_URL": project.warehouse_url})  # fmt: skip
    finally:
        holder.communicate("")
    assert one_line(done, 1) == (
        f"kpi-pipeline: the DuckDB warehouse {path} is in use by another process "
        f"(PID {holder.pid}). DuckDB allows one writing process at a time, so two runs cannot "
        "write it at once and this run changed nothing: re-run it when the other run has "
        "finished, or use PostgreSQL (KPI_WAREHOUSE_URL=postgresql+psycopg://...) for "
        "concurrent runs."
    )


@pytest.mark.parametrize("command", ["run", "scorecard"])
def test_a_sqlite_url_says_which_urls_work(project, command):
    extra = ["--date", "2026-01-05"] if command == "run" else []
    done = cli(command, "--plan", str(project.plan_path), *extra, cwd=project.root,
               env={"KPI_WAREHOUSE_URL": "sqlite:///kpi.db"})  # fmt: skip
    assert one_line(done, 2) == (
        "kpi-pipeline: warehouse URL sqlite:///kpi.db: sqlite is not supported; use "
        "duckdb:///path/to/kpi.duckdb (a file; relative paths start from the current folder) "
        "or postgresql+psycopg://user@host:5432/database (set KPI_WAREHOUSE_URL)"
    )
    assert not (project.root / "kpi.db").exists()


def test_a_missing_postgres_database_is_named_and_the_password_masked(project, postgres_server):
    from sqlalchemy.engine import make_url

    admin = make_url(postgres_server.admin_url)
    url = admin.set(database="kpi_no_such_db", password="s3cret-pw").render_as_string(
        hide_password=False
    )
    host, port = admin.host, admin.port or 5432
    done = cli("run", "--plan", str(project.plan_path), "--date", "2026-01-05", cwd=project.root,
               env={"KPI_WAREHOUSE_URL": url})  # fmt: skip
    masked = url.replace("s3cret-pw", "***")
    assert one_line(done, 2) == (
        f"kpi-pipeline: PostgreSQL database 'kpi_no_such_db' does not exist on {host}:{port} "
        f"(warehouse {masked}): create it (createdb -h {host} -p {port} kpi_no_such_db) or fix "
        "KPI_WAREHOUSE_URL"
    )
    assert "s3cret" not in done.stderr


GA4_SOURCE = """\
  traffic_source: csv_exports
  ga4:
    - {id: site, property_id: "123456", credentials_env_var: TINY_MISSING_CREDENTIALS}
"""
EMAIL_SOURCE = """\
  email:
    - {id: news, platform: mailchimp, api_key_env_var: TINY_MISSING_KEY}
"""


MISSING_CREDENTIALS = [
    pytest.param(
        GA4_SOURCE,
        "environment variable TINY_MISSING_CREDENTIALS is not set: GA4 source 'site' reads "
        "the path of its service-account key file from it (export "
        "TINY_MISSING_CREDENTIALS=..., or remove the source from the plan)",
        id="ga4",
    ),
    pytest.param(
        EMAIL_SOURCE,
        "environment variable TINY_MISSING_KEY is not set: email source 'news' (mailchimp) "
        "reads its API key from it (export TINY_MISSING_KEY=..., or remove the source from "
        "the plan)",
        id="email",
    ),
]


def _with_source(project, source: str) -> None:
    text = project.plan_path.read_text(encoding="utf-8")
    project.plan_path.write_text(text.replace("sources:\n", "sources:\n" + source, 1))


@pytest.mark.parametrize(("source", "expected"), MISSING_CREDENTIALS)
def test_a_missing_credentials_variable_is_named(project, source, expected):
    _with_source(project, source)
    done = cli("run", "--plan", str(project.plan_path), "--date", "2026-01-05", cwd=project.root,
               env={"KPI_WAREHOUSE_URL": project.warehouse_url})  # fmt: skip
    assert one_line(done, 2) == f"kpi-pipeline: {expected}"


@pytest.mark.parametrize(("source", "expected"), MISSING_CREDENTIALS)
def test_a_missing_credentials_variable_past_the_commands_check_is_classified_by_type(
    project, monkeypatch, source, expected
):
    """A run that `kpi-pipeline run` did not check first (one launched from the Dagster UI):
    the source's resource raises MissingCredentialsError, which the command line classifies
    by its type, also wrapped as Dagster carries a step's error, to the same line and code."""
    import dagster as dg
    from dagster._core.errors import DagsterExecutionStepExecutionError

    from kpi_pipeline.cli.errors import USAGE, Outcome, classify
    from kpi_pipeline.definitions import build_definitions
    from kpi_pipeline.defs.jobs import DAILY_JOB_NAME
    from kpi_pipeline.sources.credentials import MissingCredentialsError

    _with_source(project, source)
    for variable in ("TINY_MISSING_CREDENTIALS", "TINY_MISSING_KEY", "KPI_GA4_ENDPOINT"):
        monkeypatch.delenv(variable, raising=False)
    defs = build_definitions(project.plan_path, warehouse_url=project.warehouse_url)
    with pytest.raises(MissingCredentialsError) as raised:
        defs.resolve_job_def(DAILY_JOB_NAME).execute_in_process(
            partition_key="2026-01-05", instance=dg.DagsterInstance.ephemeral()
        )
    assert classify(raised.value) == Outcome(expected, USAGE)
    try:
        raise raised.value
    except MissingCredentialsError as exc:
        wrapped = DagsterExecutionStepExecutionError(
            "Error occurred while executing the step",
            user_exception=exc,
            original_exc_info=sys.exc_info(),
            step_key="sources",
            op_name="sources",
            op_def_name="sources",
        )
    assert classify(RuntimeError("run failed")) != Outcome(expected, USAGE)
    assert classify(wrapped) == Outcome(expected, USAGE)


def test_demo_data_with_start_after_end_writes_nothing(tmp_path):
    done = cli("demo-data", "--out", "out", "--start", "2026-03-01", "--end", "2026-02-01",
               cwd=tmp_path)  # fmt: skip
    assert one_line(done, 2) == "kpi-pipeline: --start 2026-03-01 is after --end 2026-02-01"
    assert not (tmp_path / "out").exists()


def test_an_unreadable_export_fails_the_run_in_one_line(project):
    # Root reads any file whatever its mode: a folder named like an export is unreadable
    # for everyone (chmod 000 is tried below where it means something).
    unreadable = project.root / "exports" / "2026-02.csv"
    unreadable.mkdir()
    expected = (
        f"step csv_exports failed: cannot read {unreadable}: Is a directory; this run changed "
        "nothing: make the file readable (or move it out of the source's folder) and run again"
    )
    args = ["run", "--plan", str(project.plan_path), "--date", "2026-01-05"]
    env = {"KPI_WAREHOUSE_URL": project.warehouse_url}
    assert one_line(cli(*args, "--quiet", cwd=project.root, env=env), 1) == expected
    # Without --quiet the stage lines come first; the failure is still the one last line.
    done = cli(*args, cwd=project.root, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == expected
    assert "warning: Dependencies" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_export_without_read_permission_fails_the_run_in_one_line(project):
    project.export_path.chmod(0)
    try:
        done = cli("run", "--plan", str(project.plan_path), "--date", "2026-01-05", "--quiet",
                   cwd=project.root, env={"KPI_WAREHOUSE_URL": project.warehouse_url})  # fmt: skip
    finally:
        project.export_path.chmod(0o644)
    assert one_line(done, 1) == (
        f"step csv_exports failed: cannot read {project.export_path}: Permission denied; this "
        "run changed nothing: make the file readable (or move it out of the source's folder) "
        "and run again"
    )


def test_scorecard_in_the_wrong_folder_names_the_path_and_creates_nothing(project, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("scorecard", "--plan", str(project.plan_path), cwd=elsewhere)
    expected = elsewhere / "warehouse" / "kpi.duckdb"
    assert one_line(done, 2) == (
        f"kpi-pipeline: no warehouse at {expected} (warehouse URL "
        f"duckdb:///warehouse/kpi.duckdb, relative to the current folder {elsewhere}): run the "
        "command from the project folder, or set KPI_WAREHOUSE_URL to the warehouse a run wrote"
    )
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "missing"])
def test_a_plan_that_is_a_folder_or_missing_is_one_line(project, kind):
    plan = project.root if kind == "folder" else project.root / "nope.yaml"
    why = "cannot read the file (Is a directory)" if kind == "folder" else "file not found"
    done = cli("run", "--plan", str(plan), cwd=project.root)
    assert one_line(done, 2) == f"kpi-pipeline: invalid plan: {plan}:1: {why}"


def test_to_without_from_is_a_usage_error(project):
    done = cli("run", "--plan", str(project.plan_path), "--to", "2026-01-06", cwd=project.root)
    assert one_line(done, 2) == "kpi-pipeline: --to needs --from"


def test_debug_shows_the_traceback_then_the_same_line(project):
    done = cli("--debug", "scorecard", "--plan", str(project.plan_path), cwd=project.root,
               env={"KPI_WAREHOUSE_URL": "sqlite:///kpi.db"})  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert "UnsupportedWarehouseUrl" in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("kpi-pipeline: warehouse URL sqlite:///kpi.db: sqlite is not supported")
    )
