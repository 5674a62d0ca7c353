"""Small projects (plan file, CSV exports, warehouse) for the data-ownership tests.

Plans are the tiny plan of `conftest.py` with an explicit `id:` and their own sources; every
run goes through `run_days` (the real Dagster job) and every read through the plan's schemas.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.runs import run_days, step_failures
from kpi_pipeline.warehouse.engine import read_frame_once


def _tiny_module():
    # `conftest` is not importable by name (every test folder has one): load it by path.
    spec = importlib.util.spec_from_file_location(
        "pipeline_tiny_conftest", Path(__file__).with_name("conftest.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tiny = _tiny_module()
TINY_PLAN: str = _tiny.TINY_PLAN
HEADER: str = _tiny.HEADER
ROWS: list[str] = list(_tiny.ROWS)

TINY_SOURCES = """\
sources:
  csv_exports:
    - id: export
      path: exports/*.csv
      event_columns: {form_start: form_start, form_submit: form_submit}
"""
assert TINY_SOURCES in TINY_PLAN

# Columns that differ from run to run by design; none of the compared marts has one today.
RUN_SPECIFIC_COLUMNS = {"run_id", "computed_at", "loaded_at", "read_at", "extracted_at"}

# The installed console script next to this interpreter, else the module (same `main`).
_SCRIPT = Path(sys.executable).with_name("kpi-pipeline")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "kpi_pipeline.cli"]


def csv_source(source_id: str, glob: str, *, allow_missing_days: bool = False) -> str:
    lines = [
        f"    - id: {source_id}",
        f"      path: {glob}",
        "      event_columns: {form_start: form_start, form_submit: form_submit}",
    ]
    if allow_missing_days:
        lines.append("      allow_missing_days: true")
    return "\n".join(lines) + "\n"


def plan_text(
    plan_id: str | None,
    sources: list[str] | None = None,
    *,
    history_start: str | None = None,
    organization: str | None = None,
) -> str:
    """The tiny plan with `id: plan_id` (None: no id key) and these CSV sources."""
    text = TINY_PLAN
    if sources is not None:
        text = text.replace(TINY_SOURCES, "sources:\n  csv_exports:\n" + "".join(sources))
    if history_start is not None:
        text = text.replace("history_start: 2026-01-05", f"history_start: {history_start}")
    if organization is not None:
        text = text.replace("organization: Tiny Shop", f"organization: {organization}")
    return text if plan_id is None else f"id: {plan_id}\n{text}"


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@dataclass
class Project:
    """One plan file in `root`, run against the warehouse at `url`."""

    root: Path
    url: str
    plan_id: str
    plan_name: str = "plan.yaml"
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)

    @property
    def plan_path(self) -> Path:
        return (self.root / self.plan_name).resolve()

    def write_plan(self, text: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.plan_path.write_text(text, encoding="utf-8")
        return self.plan_path

    def write_csv(self, relative: str, rows: list[str], header: str = HEADER) -> Path:
        return write_csv(self.root / relative, rows, header).resolve()

    def run(
        self, first: dt.date, last: dt.date | None = None, **tags: str
    ) -> dg.ExecuteInProcessResult:
        return run_days(
            self.plan_path,
            first,
            last or first,
            warehouse_url=self.url,
            instance=self.instance,
            tags=tags or None,
        )

    def read(self, sql: str, params: dict[str, object] | None = None) -> pd.DataFrame:
        return read_frame_once(self.url, sql, params, plan_id=self.plan_id)

    def count(self, schema: str, name: str, where: str = "true") -> int:
        frame = self.read(f"select count(*) as n from {{{schema}}}.{name} where {where}")
        return int(frame.n.iloc[0])

    def week(self, kpi_id: str, label: str = "2026-W02") -> tuple[float, float | None]:
        """(numerator, denominator) of a KPI's week row, segment `all`."""
        frame = self.read(
            "select numerator, denominator from {marts}.kpi_values where kpi_id = :kpi "
            "and grain = 'week' and period_label = :label and segment_type = 'all'",
            {"kpi": kpi_id, "label": label},
        )
        assert len(frame) == 1, frame
        numerator, denominator = frame.iloc[0]
        return float(numerator), None if pd.isna(denominator) else float(denominator)

    def table(self, schema: str, name: str, where: str = "") -> pd.DataFrame:
        """Every row of `{schema}.name` (minus run-specific columns), in a stable order."""
        frame = self.read(f"select * from {{{schema}}}.{name} {where}")
        return sorted_frame(frame.drop(columns=sorted(RUN_SPECIFIC_COLUMNS & set(frame.columns))))

    def marts(self) -> dict[str, pd.DataFrame]:
        return {name: self.table("marts", name) for name in ("kpi_values", "kpi_scores")}

    def warnings(self, result: dg.ExecuteInProcessResult) -> list[str]:
        """The warnings the run logged (user code's `context.log.warning`)."""
        return [
            entry.user_message
            for entry in self.instance.all_logs(result.run_id)
            if entry.dagster_event is None and entry.level == logging.WARNING
        ]


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def failure_of(result: dg.ExecuteInProcessResult, step: str) -> str:
    """The innermost message of `step`'s failure, without Dagster's exception class prefix."""
    assert not result.success
    failures = step_failures(result)
    assert step in failures, failures
    return failures[step].removeprefix("dagster._core.definitions.events.Failure: ")


def csv_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """The `raw/csv_traffic` materialization's run-wide metadata values (a range run records
    one materialization per day, each with the run's metadata and its own day's row count)."""
    found = [
        {key: value.value for key, value in m.metadata.items() if key != "dagster/row_count"}
        for m in result.asset_materializations_for_node("csv_exports")
        if m.asset_key == dg.AssetKey(["raw", "csv_traffic"])
    ]
    assert found, "no raw/csv_traffic materialization"
    assert all(metadata == found[0] for metadata in found), found
    return found[0]


def plan_hash(path: Path) -> str:
    return load_plan(path).plan_hash


def cli(
    args: list[str], warehouse_url: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`kpi-pipeline ARGS` as a person would type it, from `cwd`, against `warehouse_url`."""
    env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "KPI_PLAN"}}
    env["KPI_WAREHOUSE_URL"] = warehouse_url
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_printed(
    command: str, warehouse_url: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command exactly as a message printed it (`kpi-pipeline ...`, shell-quoted)."""
    parts = shlex.split(command)
    assert parts[0] == "kpi-pipeline", command
    return cli(parts[1:], warehouse_url, cwd, timeout)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)
