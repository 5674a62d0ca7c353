"""The HTML report, rewritten after every scoring: what people open to look at the plan."""

from pathlib import Path

import dagster as dg

from kpi_pipeline.defs.keys import relation_key, table_key
from kpi_pipeline.defs.resources import WarehouseResource
from kpi_pipeline.metrics.period_to_date import KPI_PERIOD_TO_DATE
from kpi_pipeline.metrics.rollup import OBJECTIVE_STATUS, TACTIC_RANKING
from kpi_pipeline.metrics.score_tables import KPI_SCORES
from kpi_pipeline.plan.loader import LoadedPlan

REPORT_KEY = dg.AssetKey(["reports", "kpi_report"])


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
        description="One self-contained HTML page: each KPI against its path to target.",
    )
    def kpi_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        # Imported here: matplotlib loads only when a report is drawn, not with the code location.
        from kpi_pipeline.reports.html import render_report, save_report
        from kpi_pipeline.reports.html.frames import NoScoresError
        from kpi_pipeline.reports.html.summary import markdown_summary

        try:
            report, html = render_report(warehouse.get(), loaded)
        except NoScoresError as exc:
            # Nothing scored yet (e.g. no data for these days): not a reason to fail the run.
            context.log.warning(f"no report written: {exc}")
            return dg.MaterializeResult(metadata={"skipped": str(exc)})
        path = save_report(html, report_dir, loaded.plan_id).resolve()
        context.log.info(f"report written to {path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "size_bytes": len(html.encode("utf-8")),
                "as_of_date": str(report.as_of),
                "preview": dg.MetadataValue.md(markdown_summary(report)),
            }
        )

    return [kpi_report]
