"""Where reports are written, unless told otherwise.

`$KPI_REPORT_DIR` when set; otherwise a `reports/` folder beside a DuckDB warehouse file
(the default `warehouse/kpi.duckdb` gives `warehouse/reports/<plan id>.html`, git-ignored
with the warehouse); for a server warehouse, `reports/` under the working directory.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

REPORT_DIR_ENV = "KPI_REPORT_DIR"


def report_dir(warehouse_url: str, configured: str | None = None) -> Path:
    """The folder reports go to: `configured` (the env var's value), else beside the warehouse."""
    if configured:
        return Path(configured)
    url = make_url(warehouse_url)
    if url.get_backend_name() == "duckdb" and url.database not in (None, "", ":memory:"):
        return Path(url.database).parent / "reports"
    return Path("reports")


def report_path(out_dir: Path, plan_id: str) -> Path:
    return out_dir / f"{plan_id}.html"
