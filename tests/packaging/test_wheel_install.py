"""The wheel as a new user gets it: built from this checkout, installed (not editable) in a
fresh venv with the tested versions of constraints.txt, and driven through its console script
from a folder that has nothing to do with the checkout.

Slow (a venv install, a few minutes with pip's cache) but part of `make test`: it is the only
test that sees what `pip install .` ships. CI's newer-Python stage installs the wheel itself
and points KPI_WHEEL_VENV at that venv, so the same tests run there without a second install.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kpi_pipeline.warehouse.sql_models import discover_models

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Left out of the copy the wheel is built from: the checkout's environments and outputs
# (top level only: kpi_pipeline/warehouse is a package) and caches anywhere.
NOT_SOURCE_AT_TOP = {".git", ".venv", "data", "warehouse", "build", "dist", ".dagster_home"}
NOT_SOURCE = shutil.ignore_patterns(
    "*.egg-info", "__pycache__", ".tmp_dagster_home_*", ".pytest_cache", ".ruff_cache"
)


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = NOT_SOURCE_AT_TOP if Path(folder) == ROOT else set()
    return set(NOT_SOURCE(folder, names)) | (top & set(names))


def _env(bin_dir: Path) -> dict[str, str]:
    """The caller's environment without the pipeline's and Dagster's settings: defaults only."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KPI_", "DAGSTER_")) and key not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout=600):
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _ok(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None):
    done = _run(args, cwd, env)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding the wheel built from this checkout."""
    if given := os.environ.get("KPI_WHEEL_VENV"):
        return Path(given) / "bin"
    work = tmp_path_factory.mktemp("wheel")
    # A copy: the build writes build/ and *.egg-info beside its sources.
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_not_source)
    _ok([sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", source], work)
    (wheel,) = (work / "dist").glob("kpi_pipeline-*.whl")
    _ok([sys.executable, "-m", "venv", work / "venv"], work)
    _ok(
        [
            work / "venv" / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",  # bytecode is written on first import anyway
            "--constraint",
            ROOT / "constraints.txt",
            wheel,
        ],
        work,
    )
    return work / "venv" / "bin"


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """An empty folder outside the checkout: nothing here but what the commands write."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def _scorecard_value(stdout: str, kpi: str, grain: str, period: str) -> str:
    """The `value` column of one scorecard row (columns are separated by 2+ spaces)."""
    lines = stdout.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    for line in lines[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[1:4] == [kpi, grain, period]:
            return cells[header.index("value")]
    raise AssertionError(f"no scorecard row for {kpi} {grain} {period} in:\n{stdout}")


def _rates(files: list[Path], first: str, last: str) -> tuple[str, str]:
    """Conversion and engagement rates over [first, last] straight from export files, as the
    scorecard prints them; rows that do not parse are skipped, as the quarantine does."""
    sessions = key_events = engaged = 0
    for file in files:
        with file.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                if None in row.values() or not first <= row["date"] <= last:
                    continue  # a short row (the demo's deliberately broken one)
                try:
                    counts = (
                        int(row["sessions"]),
                        int(row["key_events"]),
                        int(row["engaged_sessions"]),
                    )
                except ValueError:
                    continue
                sessions += counts[0]
                key_events += counts[1]
                engaged += counts[2]
    return f"{key_events / sessions:.2%}", f"{engaged / sessions:.2%}"


def test_version_is_the_installed_distributions(installed, elsewhere):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    done = _ok([installed / "kpi-pipeline", "--version"], elsewhere, _env(installed))
    assert done.stdout == f"kpi-pipeline {version}\n"


def test_sql_models_and_example_plans_come_from_the_installed_package(installed, elsewhere):
    done = _ok(
        [
            installed / "python",
            "-c",
            "import json, sysconfig\n"
            "from kpi_pipeline.definitions import DEFAULT_PLAN, SQL_MODELS_ROOT\n"
            "from kpi_pipeline.warehouse.sql_models import discover_models\n"
            "print(json.dumps({'purelib': sysconfig.get_paths()['purelib'],"
            " 'plan': str(DEFAULT_PLAN), 'sql': str(SQL_MODELS_ROOT),"
            " 'models': sorted(m.name for m in discover_models(SQL_MODELS_ROOT))}))",
        ],
        elsewhere,
        _env(installed),
    )
    found = json.loads(done.stdout)
    package = Path(found["purelib"]) / "kpi_pipeline"
    assert Path(found["plan"]) == package / "plan_config" / "demo.yaml"
    assert Path(found["sql"]) == package / "dbt_like_sql"
    assert found["models"] == sorted(m.name for m in discover_models(ROOT / "dbt_like_sql"))


def test_init_makes_a_project_that_runs_its_sample_export(installed, elsewhere):
    env = _env(installed)
    cli = installed / "kpi-pipeline"
    done = _ok([cli, "init", "Acme Shop"], elsewhere, env)
    assert "wrote project 'acme_shop' into Acme Shop/:" in done.stdout
    assert "  cd 'Acme Shop'\n" in done.stdout  # quoted: the printed commands run as printed
    project = elsewhere / "Acme Shop"
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        ".gitignore",
        "README.md",
        "acme_shop_kpis/__init__.py",
        "acme_shop_kpis/definitions.py",
        "data/exports/web_analytics_sample.csv",
        "plan_config/plan.yaml",
        "pyproject.toml",
        "workspace.yaml",
    ]

    plan = "plan_config/plan.yaml"
    validated = _ok([cli, "validate", plan], project, env)
    assert "plan id acme_shop" in validated.stdout
    ran = _ok(
        [cli, "run", "--plan", plan, "--from", "2026-01-05", "--to", "2026-02-01"], project, env
    )
    assert "materialized 28 day(s) 2026-01-05..2026-02-01" in ran.stdout
    assert (project / "warehouse" / "kpi.duckdb").is_file()

    scorecard = _ok([cli, "scorecard", "--plan", plan], project, env).stdout
    sample = [project / "data" / "exports" / "web_analytics_sample.csv"]
    # ISO week 2026-W05 is 26 Jan - 1 Feb; the month is January from the first day, the 5th.
    week_conversion, week_engagement = _rates(sample, "2026-01-26", "2026-02-01")
    month_conversion, month_engagement = _rates(sample, "2026-01-05", "2026-01-31")
    assert _scorecard_value(scorecard, "Online conversion rate", "week", "2026-W05") == (
        week_conversion
    )
    assert _scorecard_value(scorecard, "Engagement rate", "week", "2026-W05") == week_engagement
    assert _scorecard_value(scorecard, "Online conversion rate", "month", "2026-01") == (
        month_conversion
    )
    assert _scorecard_value(scorecard, "Engagement rate", "month", "2026-01") == (month_engagement)

    again = _run([cli, "init", "Acme Shop"], elsewhere, env)
    assert again.returncode == 2
    assert again.stdout == ""
    assert again.stderr == (
        "kpi-pipeline: Acme Shop is not an empty folder: init writes a new project only into "
        "a new or empty folder, and never overwrites one\n"
    )


def test_demo_runs_from_any_folder_without_a_plan_option(installed, elsewhere):
    """The packaged demo plan reads ./data/demo, where `demo-data` writes by default."""
    env = _env(installed)
    cli = installed / "kpi-pipeline"
    _ok([cli, "demo-data", "--start", "2026-08-01", "--end", "2026-08-20"], elsewhere, env)
    export = elsewhere / "data" / "demo" / "ga4_export_2026-08.csv"
    assert export.is_file()

    ran = _ok([cli, "run", "--from", "2026-08-03", "--to", "2026-08-09"], elsewhere, env)
    assert "materialized 7 day(s) 2026-08-03..2026-08-09" in ran.stdout
    assert (elsewhere / "warehouse" / "kpi.duckdb").is_file()

    scorecard = _ok([cli, "scorecard"], elsewhere, env).stdout
    conversion, engagement = _rates([export], "2026-08-03", "2026-08-09")  # ISO week 2026-W32
    assert _scorecard_value(scorecard, "Online conversion rate", "week", "2026-W32") == conversion
    assert _scorecard_value(scorecard, "Engagement rate", "week", "2026-W32") == engagement


def test_a_checkout_shadowing_the_installed_package_still_finds_its_files(installed):
    """`working_directory: .` (workspace.yaml) or a Docker image's WORKDIR put the checkout
    first on sys.path: kpi_pipeline then comes from the checkout, whose SQL models and plans
    are its top-level folders, not packages inside it."""
    done = _ok(
        [
            installed / "python",
            "-c",
            "import kpi_pipeline.definitions as d\n"
            "print(d.__file__, d.DEFAULT_PLAN, d.SQL_MODELS_ROOT)",
        ],
        ROOT,  # the current folder comes first on sys.path with -c
        _env(installed),
    )
    assert done.stdout.split() == [
        str(ROOT / "kpi_pipeline" / "definitions.py"),
        str(ROOT / "plan_config" / "demo.yaml"),
        str(ROOT / "dbt_like_sql"),
    ]
