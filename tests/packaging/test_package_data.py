"""Fast checks of what the wheel tests exercise slowly: where shipped files are looked up,
where an installed example plan reads its data, and what `init` writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import kpi_pipeline
from kpi_pipeline.cli import main
from kpi_pipeline.package_data import example_plan, sql_models_root
from kpi_pipeline.plan import loader
from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.scaffold import ProjectNames, write_project
from kpi_pipeline.sources.text_files import matching_files

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_folders_are_the_checkouts_or_inside_the_installed_package():
    # From a checkout (editable install) the mapped packages are the top-level folders
    # (setup.py); from a wheel (CI's newer Python) they sit inside the package.
    package = Path(kpi_pipeline.__file__).parent
    base = ROOT if package == ROOT / "kpi_pipeline" else package
    assert sql_models_root() == base / "dbt_like_sql"
    assert example_plan("demo.yaml") == base / "plan_config" / "demo.yaml"
    assert {p.name for p in sql_models_root().iterdir() if p.is_dir()} >= {
        "staging",
        "intermediate",
        "marts",
    }


def test_an_installed_example_plan_reads_data_from_the_current_folder(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "kpi_pipeline" / "plan_config"
    installed.mkdir(parents=True)
    (installed / "demo.yaml").write_bytes((ROOT / "plan_config" / "demo.yaml").read_bytes())
    monkeypatch.setattr(loader, "_INSTALLED_EXAMPLE_PLANS", installed)
    work = tmp_path / "work"
    (work / "data" / "demo").mkdir(parents=True)
    export = work / "data" / "demo" / "ga4_export_2026-08.csv"
    export.write_text("date\n", encoding="utf-8")
    monkeypatch.chdir(work)

    loaded = load_plan(installed / "demo.yaml")
    # work/plan_config does not exist: "plan_config/../data" is resolved by name, not on disk.
    assert loaded.base_dir == work / "plan_config"
    (source,) = loaded.plan.sources.csv_exports
    assert matching_files(loaded.base_dir, source.path) == [export]


def test_a_plan_elsewhere_reads_data_beside_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_plan(ROOT / "plan_config" / "demo.yaml").base_dir == ROOT / "plan_config"


@pytest.mark.parametrize(
    ("folder", "project", "module"),
    [
        ("Acme Shop", "acme_shop", "acme_shop_kpis"),  # spaces and capitals
        ("acme-kpis", "acme_kpis", "acme_kpis"),  # already says what it is
        ("email", "email", "email_kpis"),  # a bare `email` package would shadow the stdlib's
        ("2026", "plan_2026", "plan_2026_kpis"),  # identifiers start with a letter
    ],
)
def test_project_names_come_from_the_folder(tmp_path, folder, project, module):
    assert ProjectNames.for_folder(tmp_path / folder) == ProjectNames(project, module)


def test_init_writes_a_valid_plan_whose_columns_are_the_samples(tmp_path, capsys):
    project = tmp_path / "shop"
    assert main(["init", str(project)]) == 0
    assert capsys.readouterr().out.endswith(
        f"  cd {project}\n"
        "  kpi-pipeline validate plan_config/plan.yaml\n"
        "  kpi-pipeline run --plan plan_config/plan.yaml --from 2026-01-05 --to 2026-02-01\n"
        "  kpi-pipeline scorecard --plan plan_config/plan.yaml\n"
    )
    loaded = load_plan(project / "plan_config" / "plan.yaml")
    assert loaded.plan_id == "shop"
    (source,) = loaded.plan.sources.csv_exports
    (sample,) = matching_files(loaded.base_dir, source.path)
    assert sample == project / "data" / "exports" / "web_analytics_sample.csv"
    with sample.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(source.columns.model_dump().values()) == set(rows[0])
    # The sample covers exactly the days the printed run command loads, from history_start.
    assert (rows[0]["date"], rows[-1]["date"]) == ("2026-01-05", "2026-02-01")
    assert str(loaded.plan.history_start) == "2026-01-05"
    assert len({row["date"] for row in rows}) == 28
    workspace = (project / "workspace.yaml").read_text(encoding="utf-8")
    assert "module_name: shop_kpis.definitions" in workspace
    assert "location_name: shop" in workspace


@pytest.mark.parametrize("occupied", ["a file inside", "a file itself"])
def test_init_refuses_anything_but_a_new_or_empty_folder(tmp_path, capsys, occupied):
    target = tmp_path / "taken"
    if occupied == "a file inside":
        target.mkdir()
        (target / "notes.txt").write_text("mine", encoding="utf-8")
    else:
        target.write_text("mine", encoding="utf-8")
    assert main(["init", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"kpi-pipeline: {target} is not an empty folder: init writes a new project only into "
        "a new or empty folder, and never overwrites one\n"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == (
        ["notes.txt", "taken"] if occupied == "a file inside" else ["taken"]
    )


def test_init_into_an_existing_empty_folder(tmp_path):
    assert len(write_project(tmp_path)) == 8
