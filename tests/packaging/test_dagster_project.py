"""Dagster conventions: one code location name everywhere, and `dg` works in the repository
and in a project made by `kpi-pipeline init`, each proven through the real command."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from kpi_pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def dagster_env(tmp_path) -> dict[str, str]:
    """A throwaway DAGSTER_HOME (no telemetry), so nothing is written in the checked folder,
    and no KPI_* setting: the code location's defaults are what is checked."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPI_", "DAGSTER_"))}
    return {**env, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": sys.prefix}


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _location_names(project: Path) -> set[str]:
    """The code location's name as workspace.yaml, [tool.dagster] and [tool.dg] give it."""
    workspace = yaml.safe_load((project / "workspace.yaml").read_text(encoding="utf-8"))
    (entry,) = workspace["load_from"]
    tool = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    return {
        entry["python_module"]["location_name"],
        tool["dagster"]["code_location_name"],
        tool["dg"]["project"]["code_location_name"],
    }


def _assert_loads_as(project: Path, location: str, env: dict[str, str]) -> None:
    """workspace.yaml loads under `location`; `dg check defs` and `dg list defs` agree."""
    assert _location_names(project) == {location}
    validated = _run(
        [BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml"], project, env
    )
    assert f"Validation successful for code location {location}." in validated.stdout
    checked = _run([BIN / "dg", "check", "defs"], project, env)
    assert "All definitions loaded successfully." in checked.stdout
    listed = json.loads(_run([BIN / "dg", "list", "defs", "--json"], project, env).stdout)
    assets = {asset["asset_key"] for asset in listed["assets"]}
    assert {"raw/csv_traffic", "marts/kpi_values", "marts/kpi_scores"} <= assets


def test_repository_is_one_code_location_named_kpi_pipeline(dagster_env):
    _assert_loads_as(ROOT, "kpi_pipeline", dagster_env)


def test_init_project_is_a_dagster_project_named_after_its_folder(tmp_path, dagster_env):
    project = tmp_path / "acme-kpis"
    assert main(["init", str(project)]) == 0
    _assert_loads_as(project, "acme_kpis", dagster_env)
    # Its code location loads the project's own plan, not the demo: the warehouse resource
    # writes the schemas of plan `acme_kpis`.
    definitions = runpy.run_path(str(project / "acme_kpis" / "definitions.py"))["defs"]()
    assert definitions.resources["warehouse"].plan_id == "acme_kpis"
