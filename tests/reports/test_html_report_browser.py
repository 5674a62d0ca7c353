"""The demo report in headless Chromium: no console error, no request leaves the file, one
chart per KPI and grain with one marker per scored period, the path ending on the target."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from kpi_pipeline.plan.loader import load_plan
from kpi_pipeline.reports.html import write_report
from kpi_pipeline.reports.html.browser import Chromium, chromium_path
from kpi_pipeline.reports.html.page import CSP
from kpi_pipeline.warehouse.engine import Warehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "warehouse"))
from demo_project import DemoProject, step_failures  # noqa: E402

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> tuple[Path, DemoProject]:
    root = tmp_path_factory.mktemp("report-demo")
    project = DemoProject.create(root, f"duckdb:///{root / 'kpi.duckdb'}")
    result = project.run()
    assert result.success, step_failures(result)
    loaded = load_plan(project.plan_path)
    warehouse = Warehouse.from_url(project.warehouse_url, loaded.plan_id)
    try:
        path = write_report(warehouse, loaded, root / "out")
    finally:
        warehouse.dispose()
    return path, project


def test_demo_report_in_chromium(demo_report, tmp_path_factory):
    path, project = demo_report
    scores = project.read(
        "select kpi_id, grain, count(value) as points from marts.kpi_scores "
        "where segment_type = 'all' group by kpi_id, grain"
    )
    expected_points = {
        f"chart-{r.kpi_id}-{r.grain}": int(r.points) for r in scores.itertuples(index=False)
    }
    targets = {k.id: k.target.value for _, k in load_plan(project.plan_path).plan.iter_kpis()}
    shots = tmp_path_factory.mktemp("report-screenshots")
    with Chromium() as browser:
        visit = browser.visit(path)
        assert visit.console_errors == []
        assert visit.requests == [visit.url]  # the file itself, nothing else
        charts = browser.evaluate(
            "[...document.querySelectorAll('figure.chart')].map(f => [f.id, "
            "f.querySelectorAll('g[id^=\"' + f.id + '-points-\"] use, "
            "g[id=\"' + f.id + '-partial\"] use').length])"
        )
        assert dict(charts) == expected_points
        assert len(charts) == len(expected_points)  # one chart per KPI and grain, no more
        for chart_id, _ in charts:
            # Where the dashed path ends (its last vertex) and where the target star sits.
            end = browser.evaluate(
                f"document.querySelector('g[id=\"{chart_id}-path\"] path').getAttribute('d')"
            )
            star = browser.evaluate(
                f"(u => [+u.getAttribute('x'), +u.getAttribute('y')])"
                f"(document.querySelector('g[id=\"{chart_id}-target\"] use'))"
            )
            x, y = (float(v) for v in re.findall(r"[-\d.]+", end)[-2:])
            assert (x, y) == pytest.approx(star, abs=0.01), chart_id
        # The target's words beside the star are the plan's target.
        labels = browser.evaluate(
            "[...document.querySelectorAll('figure.chart')].map(f => [f.dataset.kpi, "
            "[...f.querySelectorAll('text')].map(t => t.textContent)"
            ".find(t => t.startsWith('target'))])"
        )
        for kpi_id, label in labels:
            value = targets[kpi_id]
            assert label == (f"target {value * 100:.2f} %" if value < 1 else f"target {value:,.0f}")
        # The charts' margins are fixed, sized from the tick labels' text: every word drawn
        # (tick labels, the target's) lies inside its chart's box, as the browser lays it out.
        outside = browser.evaluate(
            "[...document.querySelectorAll('figure.chart svg')].flatMap(svg => {"
            " const box = svg.getBoundingClientRect();"
            " return [...svg.querySelectorAll('text')].map(t => [t.getBoundingClientRect(), t])"
            "  .filter(([r]) => r.left < box.left - 0.5 || r.right > box.right + 0.5"
            "   || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)"
            "  .map(([r, t]) => [svg.closest('figure').id, t.textContent]); })"
        )
        assert outside == []
        top = browser.screenshot(shots / "report-top.png")
        full = browser.screenshot(shots / "report-full.png", full_page=True)
    assert top.stat().st_size > 10_000 and full.stat().st_size > top.stat().st_size
    # Kept as test artifacts under pytest's base temp folder; -s shows where.
    print(f"report screenshots: {top} {full}")  # noqa: T201


def test_the_checks_would_see_a_request_or_a_console_error(tmp_path):
    """The two detectors work: a page fetching an image over loopback is seen requesting it;
    under the report's Content-Security-Policy the same image is refused with a console error."""
    image = '<img src="http://127.0.0.1:9/pixel.png" alt="">'
    open_page = tmp_path / "open.html"
    open_page.write_text(f"<!doctype html><title>t</title>{image}", encoding="utf-8")
    strict_page = tmp_path / "strict.html"
    strict_page.write_text(
        f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>t</title>{image}",
        encoding="utf-8",
    )
    with Chromium() as browser:
        opened = browser.visit(open_page)
        strict = browser.visit(strict_page)
    assert opened.outside_requests == ["http://127.0.0.1:9/pixel.png"]
    assert opened.blocked == []
    # Under the policy the request is refused inside the browser, before any connection.
    assert strict.blocked == strict.outside_requests == ["http://127.0.0.1:9/pixel.png"]
    assert any("Content Security Policy" in message for message in strict.console_errors)
