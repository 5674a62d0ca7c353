"""The HTML report, rewritten when what it shows changed: what people open to look at the plan.

Drawing the page (matplotlib, one SVG per KPI and grain) is the costly part, seconds where
reading the marts it shows takes a fraction of one. So each run reads the report's frames,
fingerprints them with the plan and the report's own code, and draws the page only when
that fingerprint differs from the one recorded beside the page when it was written, or
when the page is missing or is not the one recorded (e.g. `kpi-pipeline report --as-of`
wrote over it). A daily run that changed no score, status or data-health line keeps the
page, and its "written" time, as they were. `kpi-pipeline report` always draws.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg

from kpi_pipeline.defs.keys import relation_key, table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.period_to_date import KPI_PERIOD_TO_DATE
from kpi_pipeline.metrics.rollup import OBJECTIVE_STATUS, TACTIC_RANKING
from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.plan.loader import LoadedPlan

REPORT_KEY = dg.AssetKey(["reports", "kpi_report"])

# Bump to redraw every report once (e.g. a change of the page outside kpi_pipeline/reports).
FINGERPRINT_VERSION = "1"
_REPORTS_PACKAGE = Path(__file__).resolve().parent.parent / "reports"
# Columns read with the frames that the page does not show: a failing check's time changes
# with every run that checks it again, its result (what the page lists) does not.
_NOT_SHOWN = {"failed_checks": ("checked_at",)}


def inputs_path(report: Path) -> Path:
    """Where the fingerprint of a written report is kept: a hidden file beside it."""
    return report.with_name(f".{report.name}.inputs.json")


def report_fingerprint(frames: Any, loaded: LoadedPlan) -> str:
    """A digest of everything the page is drawn from (not the time it is drawn)."""
    import dataclasses

    import numpy as np
    import pandas as pd

    digest = hashlib.sha256(FINGERPRINT_VERSION.encode())
    for source in sorted(_REPORTS_PACKAGE.rglob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    digest.update(loaded.plan_id.encode())
    digest.update(loaded.plan.model_dump_json().encode())
    for item in dataclasses.fields(frames):
        value = getattr(frames, item.name)
        digest.update(item.name.encode())
        if isinstance(value, pd.DataFrame):
            value = value.drop(columns=list(_NOT_SHOWN.get(item.name, ())), errors="ignore")
            digest.update(repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
            digest.update(str(len(value)).encode())
            # The rows as a set: tables read without `order by` come in any order, and
            # the page orders what it shows itself.
            try:
                hashed = pd.util.hash_pandas_object(value, index=False).to_numpy()
                digest.update(np.sort(hashed).tobytes())
            except (TypeError, ValueError):  # cells pandas cannot hash: their text
                digest.update("\n".join(sorted(value.astype(str).agg("|".join, axis=1))).encode())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def unchanged_report(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The record of the page at `path` when it is the one drawn from `fingerprint`."""
    try:
        recorded = json.loads(inputs_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint:
        return None
    if recorded.get("html_sha256") != _file_digest(path):
        return None  # the page was replaced (or edited) since: draw it again
    return recorded


def record_report(path: Path, html: str, fingerprint: str, **details: Any) -> None:
    """Write the fingerprint of the page just written (a reader never sees half a file)."""
    record = {
        "fingerprint": fingerprint,
        "html_sha256": hashlib.sha256(html.encode("utf-8")).hexdigest(),
        **details,
    }
    target = inputs_path(path)
    partial = target.with_name(f"{target.name}.tmp")
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    partial.replace(target)


def build_report_assets(loaded: LoadedPlan, report_dir: Path) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=REPORT_KEY,
        deps=[
            table_key(KPI_SCORES),
            table_key(OBJECTIVE_STATUS),
            table_key(TACTIC_RANKING),
            table_key(KPI_PERIOD_TO_DATE),
            relation_key("marts", "unmapped_traffic"),
        ],
        group_name="reporting",
        kinds={"python", "html"},
        description="One self-contained HTML page: each KPI against its path to target "
        "(drawn again only when what it shows changed).",
    )
    def kpi_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        # Imported here: matplotlib loads only when a report is drawn, not with the code location.
        from kpi_pipeline.reports.html import report_path, save_report
        from kpi_pipeline.reports.html.frames import NoScoresError, read_report_frames

        wh = warehouse.get()
        try:
            frames = read_report_frames(wh, loaded.plan, None)
        except NoScoresError as exc:
            # Nothing scored yet (e.g. no data for these days): not a reason to fail the run.
            context.log.warning(f"no report written: {exc}")
            return dg.MaterializeResult(metadata={"skipped": str(exc)})
        fingerprint = report_fingerprint(frames, loaded)
        path = report_path(report_dir, loaded.plan_id).resolve()
        recorded = unchanged_report(path, fingerprint)
        if recorded is not None:
            context.log.info(f"report unchanged, kept: {path}")
            return dg.MaterializeResult(
                metadata={
                    "path": dg.MetadataValue.path(str(path)),
                    "size_bytes": path.stat().st_size,
                    "as_of_date": str(recorded.get("as_of_date", frames.as_of)),
                    "rendered": False,
                    "unchanged_since": str(recorded.get("written_at", "")),
                    "preview": dg.MetadataValue.md(str(recorded.get("preview", ""))),
                }
            )

        from kpi_pipeline.reports.html import render_frames
        from kpi_pipeline.reports.html.summary import markdown_summary

        generated = dt.datetime.now(dt.UTC)
        report, html = render_frames(frames, loaded, generated)
        path = save_report(html, report_dir, loaded.plan_id).resolve()
        preview = markdown_summary(report)
        try:
            record_report(
                path,
                html,
                fingerprint,
                as_of_date=str(report.as_of),
                written_at=generated.isoformat(timespec="seconds"),
                preview=preview,
            )
        except OSError as exc:  # the page is written; the next run draws it again
            context.log.warning(f"report fingerprint not recorded: {exc}")
        context.log.info(f"report written to {path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "size_bytes": len(html.encode("utf-8")),
                "as_of_date": str(report.as_of),
                "rendered": True,
                "preview": dg.MetadataValue.md(preview),
            }
        )

    return [kpi_report]
