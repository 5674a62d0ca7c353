"""The report asset draws the page only when what it shows changed (issue 14).

A one-day run repeated with the same data keeps the page as it is (same bytes, same file
time; the materialization says `rendered: False`); a page written over by someone else is
drawn again; a run whose scores changed draws it again.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pandas as pd

from kpi_pipeline.defs.report_assets import REPORT_KEY, inputs_path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "warehouse"))
from demo_project import LAST_DAY, DemoProject, step_failures  # noqa: E402


def report_metadata(result) -> dict:
    """The metadata of the run's one materialization of the report."""
    found = [
        event.event_specific_data.materialization.metadata
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION"
        and event.event_specific_data.materialization.asset_key == REPORT_KEY
    ]
    assert len(found) == 1, found
    return {key: getattr(value, "value", value) for key, value in found[0].items()}


def scores_of(project: DemoProject) -> pd.DataFrame:
    return project.read(
        "select kpi_id, grain, period_start, value from marts.kpi_scores "
        "where segment_type = 'all' order by kpi_id, grain, period_start"
    )


def test_a_repeated_day_keeps_the_page_and_changed_scores_redraw_it(tmp_path, monkeypatch):
    monkeypatch.delenv("KPI_REPORT_DIR", raising=False)
    project = DemoProject.create(tmp_path, f"duckdb:///{tmp_path / 'kpi.duckdb'}")
    page = tmp_path / "reports" / "demo.html"  # beside the DuckDB file

    first = project.run()
    assert first.success, step_failures(first)
    assert report_metadata(first)["rendered"] is True
    assert inputs_path(page).is_file()

    # The last day again, twice: the second run sees exactly what the first one left.
    day = project.run(LAST_DAY, LAST_DAY)
    assert day.success, step_failures(day)
    before = (page.stat().st_mtime_ns, page.read_bytes())
    again = project.run(LAST_DAY, LAST_DAY)
    assert again.success, step_failures(again)
    kept = report_metadata(again)
    assert kept["rendered"] is False
    assert kept["path"] == str(page.resolve())
    assert kept["as_of_date"] == LAST_DAY.isoformat()
    assert kept["unchanged_since"]
    assert (page.stat().st_mtime_ns, page.read_bytes()) == before

    # A page replaced by someone else (e.g. `kpi-pipeline report --as-of`) is drawn again.
    page.write_text("<!doctype html><p>another page</p>", encoding="utf-8")
    restored = project.run(LAST_DAY, LAST_DAY)
    assert restored.success, step_failures(restored)
    assert report_metadata(restored)["rendered"] is True
    assert page.read_bytes() != b"<!doctype html><p>another page</p>"
    assert "<svg" in page.read_text(encoding="utf-8")

    # Different exports for the last day: its scores change, and the page with them.
    scores = scores_of(project)
    _double_sessions(tmp_path / "data" / "demo", LAST_DAY)
    written = page.stat().st_mtime_ns, page.read_bytes()
    changed = project.run(LAST_DAY, LAST_DAY)
    assert changed.success, step_failures(changed)
    assert not scores_of(project).equals(scores), "the new exports changed no score"
    assert report_metadata(changed)["rendered"] is True
    assert page.stat().st_mtime_ns != written[0]
    assert page.read_bytes() != written[1]


def _double_sessions(folder: Path, day: dt.date) -> None:
    """Rewrite the demo exports holding `day` with twice the sessions on that day."""
    touched = 0
    for export in sorted(folder.glob("*.csv")):
        frame = pd.read_csv(export, dtype=str, keep_default_na=False)
        rows = frame["date"] == day.isoformat()
        if not rows.any():
            continue
        frame.loc[rows, "sessions"] = (frame.loc[rows, "sessions"].astype(int) * 2).astype(str)
        frame.to_csv(export, index=False)
        touched += 1
    assert touched, f"no export holds {day}"
