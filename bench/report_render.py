"""The HTML report of a full demo warehouse: its size (target < 5 MB), how long it takes to
write (read the marts, draw the charts), and how long Chromium takes to load and paint it
(target < 3 s). Measured, printed, not asserted.

    .venv/bin/python bench/report_render.py [--warehouse duckdb:///PATH] [--plan PLAN]

Defaults: the 18-month demo warehouse `warehouse/kpi.duckdb` of `make demo`, the demo plan.
The warehouse is only read.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kpi_pipeline.plan.loader import load_plan

SIZE_TARGET_MB = 5.0
RENDER_TARGET_S = 3.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", default="duckdb:///warehouse/kpi.duckdb")
    parser.add_argument("--plan", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3, help="Chromium loads to time")
    args = parser.parse_args()
    if args.plan is None:
        from kpi_pipeline.definitions import DEFAULT_PLAN

        args.plan = DEFAULT_PLAN
    loaded = load_plan(args.plan)
    out = Path(tempfile.mkdtemp(prefix="kpi-report-bench-"))

    # A fresh interpreter: the first report pays for importing matplotlib, as a daily run does.
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from kpi_pipeline.plan.loader import load_plan;"
            "from kpi_pipeline.warehouse.engine import Warehouse;"
            "from kpi_pipeline.reports.html import write_report;"
            "loaded = load_plan(sys.argv[1]);"
            "wh = Warehouse.from_url(sys.argv[2], loaded.plan_id);"
            "write_report(wh, loaded, Path(sys.argv[3])); wh.dispose()",
            str(loaded.path),
            args.warehouse,
            str(out),
        ],
        check=True,
    )
    write_seconds = time.perf_counter() - started
    path = out / f"{loaded.plan_id}.html"
    size_mb = path.stat().st_size / 1e6
    charts = path.read_text(encoding="utf-8").count('<figure class="chart"')

    from kpi_pipeline.reports.html.browser import Chromium

    loads, paints = [], []
    with Chromium() as browser:
        for _ in range(args.runs):
            visit = browser.visit(path)
            loads.append(visit.load_seconds)
            started = time.perf_counter()
            browser.screenshot(out / "full.png", full_page=True)  # layout + paint, whole page
            paints.append(visit.load_seconds + time.perf_counter() - started)
            if visit.console_errors or visit.outside_requests:
                print(f"console: {visit.console_errors} requests: {visit.outside_requests}")
    print(f"report: {path} ({charts} charts)")
    print(f"size: {size_mb:.2f} MB (target < {SIZE_TARGET_MB:.0f} MB)")
    print(f"write (fresh process, imports included): {write_seconds:.2f} s")
    print(
        f"Chromium load event: best {min(loads):.2f} s, worst {max(loads):.2f} s; "
        f"load + full-page paint: best {min(paints):.2f} s, worst {max(paints):.2f} s "
        f"(target < {RENDER_TARGET_S:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
