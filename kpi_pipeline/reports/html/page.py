"""The report as one HTML page: inline CSS, inline SVG charts, the data as inline JSON.

No script runs and nothing is fetched: a Content-Security-Policy of `default-src 'none'`
(inline styles and `data:` images allowed) makes any stray request a console error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable
from html import escape

import pandas as pd

from kpi_pipeline.reports.html.frames import SCORE_COLUMNS
from kpi_pipeline.reports.html.model import (
    GRAIN_NOUNS,
    ObjectiveSection,
    Panel,
    Report,
    deadline_words,
)
from kpi_pipeline.reports.wording import (
    describe_hold,
    format_change,
    format_date,
    format_interval,
    format_value,
    is_missing,
    status_words,
)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
DATA_ELEMENT_ID = "kpi-scores-data"
# A shape per status beside its words: the status reads without colour.
STATUS_ICONS = {
    "achieved": "◆",
    "on_track": "●",
    "at_risk": "▲",
    "off_track": "✖",
    "insufficient_data": "■",
}

CSS = """
:root { --ink: #1a1a1a; --muted: #555; --rule: #ddd;
  --achieved: #0072B2; --on_track: #009E73; --at_risk: #E69F00; --off_track: #D55E00;
  --insufficient_data: #999999; }
* { box-sizing: border-box; }
body { font: 15px/1.45 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--ink);
  max-width: 62rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; } h2 { font-size: 1.3rem; margin: 2rem 0 .3rem; }
h3 { font-size: 1.1rem; margin: 1.4rem 0 .2rem; } h4 { font-size: 1rem; margin: 1rem 0 .2rem; }
.mission { font-size: 1.05rem; font-style: italic; margin: .3rem 0; }
.meta, .muted, figcaption { color: var(--muted); font-size: .85rem; }
.objective { border-top: 3px solid var(--ink); margin-top: 2rem; }
.kpi { border-top: 1px solid var(--rule); }
.grain { margin: .8rem 0 1.4rem; }
.summary { margin: .2rem 0; }
.status { display: inline-block; padding: 0 .45em; border-radius: .3em; color: #fff;
  font-weight: 600; white-space: nowrap; font-size: .9em; }
.status-achieved { background: var(--achieved); } .status-on_track { background: var(--on_track); }
.status-at_risk { background: var(--at_risk); color: #1a1a1a; }
.status-off_track { background: var(--off_track); }
.status-insufficient_data { background: var(--insufficient_data); color: #1a1a1a; }
.rollup { list-style: none; padding: 0; margin: .3rem 0; display: flex; flex-wrap: wrap;
  gap: .3rem 1rem; }
figure { margin: .4rem 0; } .chart-svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: .85rem; margin: .4rem 0; }
th, td { border-bottom: 1px solid var(--rule); padding: .15rem .5rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
details { margin: .3rem 0; } summary { cursor: pointer; color: var(--muted); }
.legend { font-size: .85rem; border: 1px solid var(--rule); padding: .5rem .8rem; }
.legend ul { margin: .2rem 0; padding-left: 1.2rem; columns: 2; }
nav ol { columns: 2; }
@page { size: A4; margin: 12mm; }
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  nav, details { display: none; }
  .grain, figure, table { break-inside: avoid; }
  .objective { break-before: page; }
  .status { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""


def render_page(report: Report, chart: Callable[[Panel], str], generated: dt.datetime) -> str:
    """The whole page; `chart` draws one panel as an inline `<svg>`."""
    title = f"{report.organization}: KPI report, data to {format_date(report.as_of)}"
    body = [
        _header(report, generated),
        _contents(report),
        _legend(),
        *(_objective(section, chart) for section in report.objectives),
        _health(report),
        _embedded_data(report.frames.scores),
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def status_badge(status: str | None) -> str:
    if is_missing(status):
        return '<span class="muted">-</span>'
    icon = STATUS_ICONS.get(str(status), "")
    return (
        f'<span class="status status-{escape(str(status))}">'
        f"{icon} {escape(status_words(status))}</span>"
    )


def _header(report: Report, generated: dt.datetime) -> str:
    source = (
        f"scores as reported by run {escape(report.snapshot_run)}"
        if report.snapshot_run
        else "current scores"
    )
    return (
        f"<header><h1>{escape(report.organization)}: how the plan is doing</h1>"
        f'<p class="mission">{escape(report.mission)}</p>'
        f'<p class="meta">Data to {format_date(report.as_of)} ({source}); plan '
        f"<code>{escape(report.plan_id)}</code> version {escape(report.plan_hash[:12])}; "
        f"written {generated:%Y-%m-%d %H:%M} UTC.</p></header>"
    )


def _contents(report: Report) -> str:
    items = "".join(
        f'<li><a href="#objective-{escape(s.objective.id)}">{escape(s.objective.title)}</a> '
        f"{_worst_rollup(s)}</li>"
        for s in report.objectives
    )
    return (
        f'<nav aria-label="Contents"><ol>{items}'
        '<li><a href="#data-health">Data health</a></li></ol></nav>'
    )


def _worst_rollup(section: ObjectiveSection) -> str:
    return " ".join(status_badge(status) for _, status in section.rollup[-1:])


def _legend() -> str:
    items = [
        "<b>●</b> on track, <b>▲</b> at risk, <b>✖</b> off track, <b>◆</b> achieved, "
        "<b>■</b> not enough data: each closed period, at its middle day",
        "<b>○</b> hollow: the current period, still running (its value will move)",
        "<b>◯</b> ring: period held (data still provisional) or flagged (sampled, checks)",
        "dashed line: the straight path from baseline to target; grey band: behind the "
        "path but within tolerance (at risk)",
        "whiskers: the rate's 95 % confidence interval",
        "dotted line and cone: forecast at the deadline and its interval; <b>★</b> target",
    ]
    return (
        '<section class="legend" aria-label="How to read the charts"><b>Reading the charts</b>'
        f"<ul>{''.join(f'<li>{item}</li>' for item in items)}</ul></section>"
    )


def _objective(section: ObjectiveSection, chart: Callable[[Panel], str]) -> str:
    objective = section.objective
    rollup = "".join(
        f"<li>by {escape(GRAIN_NOUNS.get(grain, grain))}: {status_badge(status)}</li>"
        for grain, status in section.rollup
    )
    parts = [
        f'<section class="objective" id="objective-{escape(objective.id)}">',
        f"<h2>{objective.priority}. {escape(objective.title)}</h2>",
        f'<p class="meta">{deadline_words(objective, section.days_left)}</p>',
    ]
    if objective.description:
        parts.append(f"<p>{escape(objective.description)}</p>")
    if rollup:
        parts.append(f'<ul class="rollup" aria-label="Objective status">{rollup}</ul>')
    for kpi, panels in section.kpis:
        parts.append(f'<article class="kpi" id="kpi-{escape(kpi.id)}">')
        parts.append(f"<h3>{escape(kpi.label)}</h3>")
        kind = kpi.kind.value
        parts.append(
            f'<p class="meta">{escape(kpi.description)} '
            f"From {format_value(kpi.baseline.value, kind)} on {format_date(kpi.baseline.as_of)} "
            f"to {format_value(kpi.target.value, kind)} "
            f"by {format_date(kpi.target.by)} ({escape(kpi.direction.value)}s are better).</p>"
        )
        if not panels:
            parts.append('<p class="muted">No scores yet.</p>')
        parts.extend(_panel(panel, chart) for panel in panels)
        parts.append("</article>")
    parts.append("</section>")
    return "\n".join(parts)


def _panel(panel: Panel, chart: Callable[[Panel], str]) -> str:
    noun = GRAIN_NOUNS.get(panel.grain, panel.grain)
    latest = panel.latest
    head = (
        f"Latest closed {noun}, {escape(latest.label)}: {status_badge(latest.status)} "
        if latest
        else ""
    )
    closed = sum(1 for p in panel.points if not p.is_partial and p.value is not None)
    partial = sum(1 for p in panel.points if p.is_partial and p.value is not None)
    parts = [
        f'<section class="grain" id="{panel.chart_id}-section">',
        f"<h4>{escape(panel.kpi.label)} by {escape(noun)}</h4>",
        f'<p class="summary">{head}{escape(panel.summary)}.</p>',
    ]
    if panel.to_date:
        parts.append(f'<p class="summary">{escape(panel.to_date)}.</p>')
    parts.append(
        f'<figure class="chart" id="{panel.chart_id}" data-kpi="{escape(panel.kpi.id)}" '
        f'data-grain="{escape(panel.grain)}" data-points="{closed + partial}">'
        f"{chart(panel)}"
        f'<figcaption id="{panel.chart_id}-caption">{escape(panel.kpi.label)} by {noun}: '
        f"{closed} closed period{'s' if closed != 1 else ''}"
        f"{' and the current one' if partial else ''}, against the path to "
        f"{format_value(panel.kpi.target.value, panel.kpi.kind.value)} by "
        f"{format_date(panel.kpi.target.by)}.</figcaption></figure>"
    )
    if panel.tactics:
        parts.append(_tactics_table(panel))
    parts.append(_data_table(panel))
    parts.append("</section>")
    return "\n".join(parts)


def _tactics_table(panel: Panel) -> str:
    kind = panel.kpi.kind.value
    rows = "".join(
        "<tr>"
        f'<td class="num">{t.rank}</td><th scope="row">{escape(t.tactic)}</th>'
        f'<td class="num">{format_value(t.value, kind)}</td>'
        f'<td class="num">{format_value(t.expected, kind)}</td>'
        f'<td class="num">{format_change(t.gap, kind)}</td>'
        f'<td class="num">{format_value(t.denominator, "volume")}</td>'
        f"<td>{status_badge(t.status)}</td></tr>"
        for t in panel.tactics
    )
    return (
        f'<table class="tactics" id="{panel.chart_id}-tactics"><caption>Tactics in '
        f"{escape(panel.tactics_period or '')}, the furthest behind the path first</caption>"
        '<thead><tr><th scope="col" class="num">rank</th><th scope="col">tactic</th>'
        '<th scope="col" class="num">value</th><th scope="col" class="num">expected</th>'
        '<th scope="col" class="num">gap to path</th><th scope="col" class="num">base</th>'
        f'<th scope="col">status</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _data_table(panel: Panel) -> str:
    kind = panel.kpi.kind.value
    rows = "".join(
        "<tr>"
        f'<th scope="row">{escape(p.label)}</th>'
        f"<td>{p.start.isoformat()} – {p.end.isoformat()}</td>"
        f'<td class="num">{format_value(p.value, kind)}</td>'
        f'<td class="num">{format_value(p.expected, kind)}</td>'
        f'<td class="num">{format_interval(p.ci_low, p.ci_high, kind)}</td>'
        f"<td>{status_badge(p.status)}</td>"
        f"<td>{'so far' if p.is_partial else 'closed'}</td>"
        f"<td>{escape(describe_hold(p.hold_reason or p.quality_flags) or '')}</td></tr>"
        for p in panel.points
    )
    return (
        f"<details><summary>Data behind the chart ({len(panel.points)} periods)</summary>"
        f'<table class="data" id="{panel.chart_id}-data"><caption>'
        f"{escape(panel.kpi.label)} by {escape(GRAIN_NOUNS.get(panel.grain, panel.grain))}"
        '</caption><thead><tr><th scope="col">period</th><th scope="col">days</th>'
        '<th scope="col" class="num">value</th><th scope="col" class="num">expected</th>'
        '<th scope="col" class="num">interval</th><th scope="col">status</th>'
        '<th scope="col">period</th><th scope="col">held</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></details>"
    )


def _health(report: Report) -> str:
    frames = report.frames
    parts = ['<section class="objective" id="data-health"><h2>Data health</h2>']
    parts.append(
        _table(
            "Sources and the last day loaded",
            ["source", "first day", "last day loaded", "days", "rows"],
            (
                [r["source_id"], _day(r["first_day"]), _day(r["last_day"]), r["days"], r["rows"]]
                for r in frames.source_days.to_dict("records")
            ),
            "health-sources",
            "No source has loaded a day yet.",
        )
    )
    parts.append(
        _table(
            f"Quarantined rows: {frames.quarantined_rows:,} (rows the sources could not read)",
            ["source", "reason", "rows", "last day"],
            (
                [r["source_id"], r["reason"], r["rows"], _day(r["last_day"])]
                for r in frames.quarantine.to_dict("records")
            ),
            "health-quarantine",
            "No row was quarantined.",
        )
    )
    parts.append(
        _table(
            "Traffic no tactic claims (most sessions first)",
            ["source", "medium", "campaign", "sessions", "key events"],
            (
                [r["source"], r["medium"], r["campaign"], r["sessions"], r.get("key_events")]
                for r in frames.unmapped.to_dict("records")
            ),
            "health-unmapped",
            "Every session belongs to a tactic.",
        )
    )
    parts.append(
        _table(
            "Held and flagged periods",
            ["KPI", "grain", "period", "why"],
            ([h.kpi_label, h.grain, h.period, h.reason] for h in report.held),
            "health-held",
            "No period is held: every closed period's status is final.",
        )
    )
    parts.append(
        _table(
            "Failed data checks (each check's latest result)",
            ["asset", "check", "severity", "observed", "what it checks"],
            (
                [r["asset"], r["check_name"], r["severity"], r["observed_value"], r["description"]]
                for r in frames.failed_checks.to_dict("records")
            ),
            "health-checks",
            "Every data check passed on its latest run.",
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


def _table(
    caption: str, headers: list[str], rows: Iterable[list], table_id: str, empty: str
) -> str:
    body = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in rows)
    if not body:
        return f'<h3>{escape(caption)}</h3><p class="muted" id="{table_id}">{escape(empty)}</p>'
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    return (
        f'<table id="{table_id}"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _cell(value: object) -> str:
    if is_missing(value):
        return "<td>-</td>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{value:,.0f}</td>'
    return f"<td>{escape(str(value))}</td>"


def _day(value: object) -> str:
    return "-" if is_missing(value) else pd.Timestamp(value).date().isoformat()


def embedded_rows(scores: pd.DataFrame) -> dict:
    """The whole-site scores as JSON-ready columns and rows (dates ISO, missing as null)."""
    rows = [
        [_json_value(row[column]) for column in SCORE_COLUMNS] for row in scores.to_dict("records")
    ]
    return {"columns": list(SCORE_COLUMNS), "rows": rows}


def _json_value(value: object) -> object:
    if is_missing(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return value
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _embedded_data(scores: pd.DataFrame) -> str:
    # A data block, never executed (and allowed by the CSP): "</" escaped so it cannot close.
    text = json.dumps(embedded_rows(scores), separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{DATA_ELEMENT_ID}">{text}</script>'
