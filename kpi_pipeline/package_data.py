"""Folders shipped inside the package, found through `importlib.resources`.

The SQL models (`dbt_like_sql/`) and the example plans (`plan_config/`) stay top-level folders
of the repository and are mapped into the package at build time (setup.py): a wheel holds
them as `kpi_pipeline/dbt_like_sql/` and `kpi_pipeline/plan_config/`, an editable install
finds them where they are. Asking importlib, never a path relative to this file, finds both.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_folder(package: str) -> Path:
    """The folder of the data package `kpi_pipeline.<package>` on disk."""
    try:
        folder = resources.files(f"kpi_pipeline.{package}")
    except ModuleNotFoundError:
        # kpi_pipeline imported straight from a checkout (its folder first on sys.path, as
        # `working_directory: .` does, shadowing any install): the folder sits beside it.
        beside = Path(__file__).resolve().parent.parent / package
        if not beside.is_dir():
            raise
        return beside
    # Plans and SQL are read with globs and relative paths: they need a real folder, which
    # every pip install gives (a zipped import would not).
    if not isinstance(folder, Path):
        raise RuntimeError(f"kpi_pipeline.{package} is not installed as a folder: {folder}")
    return folder


def sql_models_root() -> Path:
    """`dbt_like_sql/`: staging, intermediate and marts models."""
    return shipped_folder("dbt_like_sql")


def example_plan(name: str) -> Path:
    """An example plan of `plan_config/` (`demo.yaml`, `ga4_example.yaml`, ...)."""
    return shipped_folder("plan_config") / name
