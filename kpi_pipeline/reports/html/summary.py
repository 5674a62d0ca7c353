"""The report in a few lines of markdown: the Dagster asset's preview."""

from __future__ import annotations

from kpi_pipeline.reports.html.model import GRAIN_NOUNS, Report
from kpi_pipeline.reports.wording import format_date, format_value, status_words


def markdown_summary(report: Report) -> str:
    """Objectives in priority order, each KPI's latest closed value and status per grain."""
    lines = [
        f"**{report.organization}**, data to {format_date(report.as_of)}",
        "",
        "| objective | KPI | grain | period | value | expected | status |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for section in report.objectives:
        objective = f"{section.objective.priority}. {section.objective.title}"
        for kpi, panels in section.kpis:
            for panel in panels:
                latest = panel.latest
                if latest is None:
                    continue
                kind = kpi.kind.value
                lines.append(
                    f"| {objective} | {kpi.label} | {GRAIN_NOUNS.get(panel.grain, panel.grain)} "
                    f"| {latest.label} | {format_value(latest.value, kind)} "
                    f"| {format_value(latest.expected, kind)} | {status_words(latest.status)} |"
                )
    if report.held:
        lines += [
            "",
            f"{len(report.held)} period(s) held or flagged: see the report's data health.",
        ]
    return "\n".join(lines)
