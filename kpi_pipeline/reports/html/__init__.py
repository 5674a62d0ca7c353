"""The HTML report: one self-contained file per plan, each KPI against its path to target.

`write_report(warehouse, loaded_plan, out_dir, as_of)` reads the plan's marts
(`frames.py`), builds the report as data (`model.py`), draws each KPI and grain as inline
SVG (`charts.py`, matplotlib) and writes one HTML page (`page.py`). Nothing is fetched
when the page opens: it works from disk, as a CI artifact or an e-mail attachment.

This module imports nothing heavy, so `definitions.py` can ask where reports go
(`report_dir`) without loading matplotlib; the drawing is imported when a report is written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from kpi_pipeline.reports.html.location import report_dir, report_path

if TYPE_CHECKING:
    from kpi_pipeline.plan.loader import LoadedPlan
    from kpi_pipeline.reports.html.frames import ReportFrames
    from kpi_pipeline.reports.html.model import Report
    from kpi_pipeline.warehouse.engine import Warehouse

__all__ = [
    "render_frames",
    "render_report",
    "report_dir",
    "report_path",
    "save_report",
    "write_report",
]


def render_report(
    warehouse: Warehouse,
    loaded: LoadedPlan,
    as_of: dt.date | None = None,
    generated: dt.datetime | None = None,
) -> tuple[Report, str]:
    """The report (as data) and its HTML. Raises `NoScoresError` when there is nothing yet."""
    from kpi_pipeline.reports.html.frames import read_report_frames

    return render_frames(read_report_frames(warehouse, loaded.plan, as_of), loaded, generated)


def render_frames(
    frames: ReportFrames, loaded: LoadedPlan, generated: dt.datetime | None = None
) -> tuple[Report, str]:
    """The report and its HTML, drawn from frames already read (`read_report_frames`)."""
    from kpi_pipeline.reports.html.charts import chart_svg
    from kpi_pipeline.reports.html.model import build_report
    from kpi_pipeline.reports.html.page import render_page

    report = build_report(frames, loaded)
    generated = generated or dt.datetime.now(dt.UTC)
    return report, render_page(report, chart_svg, generated)


def write_report(
    warehouse: Warehouse, loaded: LoadedPlan, out_dir: Path, as_of: dt.date | None = None
) -> Path:
    """Write `<out_dir>/<plan id>.html` (replacing it whole: a reader never sees half a
    file) and return its path."""
    _, html = render_report(warehouse, loaded, as_of)
    return save_report(html, Path(out_dir), loaded.plan_id)


def save_report(html: str, out_dir: Path, plan_id: str) -> Path:
    """Write the page through a temporary file renamed over the old one."""
    path = report_path(out_dir, plan_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
