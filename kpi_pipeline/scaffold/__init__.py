"""`kpi-pipeline init`: a project folder for one's own data, written from `templates/`.

The project holds a commented plan template, a sample export in the layout the plan reads,
the Dagster code location that loads the plan (`workspace.yaml`, `[tool.dg]`) and a README
walking from the sample to one's own export. Templates are package data, so an installed
wheel scaffolds the same project as a source checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kpi_pipeline.plan.loader import default_plan_id

# Template file -> where it goes in the new project (`{module}` is the project's package).
TEMPLATES = {
    "README.md.tmpl": "README.md",
    "plan.yaml.tmpl": "plan_config/plan.yaml",
    "sample_export.csv": "data/exports/web_analytics_sample.csv",
    "definitions.py.tmpl": "{module}/definitions.py",
    "workspace.yaml.tmpl": "workspace.yaml",
    "pyproject.toml.tmpl": "pyproject.toml",
    "gitignore": ".gitignore",
}
PLAN_FILE = "plan_config/plan.yaml"
# The days of the sample export: what the README and `init` tell to run first.
SAMPLE_FIRST_DAY = "2026-01-05"
SAMPLE_LAST_DAY = "2026-02-01"


@dataclass(frozen=True)
class ProjectNames:
    """`project`: the plan id and Dagster code location name; `module`: its Python package."""

    project: str
    module: str

    @classmethod
    def for_folder(cls, folder: Path) -> ProjectNames:
        """From the folder's name: `Acme Shop/` -> plan `acme_shop`, package `acme_shop_kpis`."""
        project = default_plan_id(Path(f"{folder.resolve().name}.yaml"))
        # A suffix keeps the package from shadowing a module of the same name (`email`, `test`).
        module = project if project.endswith("kpis") else f"{project}_kpis"
        return cls(project=project, module=module)


class FolderNotEmptyError(ValueError):
    """`init` writes only into a new or empty folder: it never overwrites a project."""


def write_project(folder: Path) -> list[Path]:
    """Write a new project into `folder` (created if missing); return the files written.

    Raises FolderNotEmptyError if `folder` exists and holds anything, or is a file.
    """
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FolderNotEmptyError(
            f"{folder} is not an empty folder: init writes a new project only into a new or "
            "empty folder, and never overwrites one"
        )
    names = ProjectNames.for_folder(folder)
    templates = resources.files(__package__) / "templates"
    written = []
    for template, target in TEMPLATES.items():
        path = folder / target.format(module=names.module)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (templates / template).read_text(encoding="utf-8")
        path.write_text(
            text.replace("{{project}}", names.project).replace("{{module}}", names.module),
            encoding="utf-8",
        )
        written.append(path)
    package_init = folder / names.module / "__init__.py"
    package_init.write_text("", encoding="utf-8")
    written.append(package_init)
    return written
