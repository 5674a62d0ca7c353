"""One chart per KPI and grain, drawn by matplotlib as inline SVG: no script, no request.

Every artist carries a `gid` (`<chart id>-path`, `-points-<status>`, `-partial`, ...), which
the SVG keeps as the `id` of its group: tests count the points of a chart in the browser's
DOM and read where the path ends. Statuses have Okabe-Ito colours (safe for colour-blind
readers) and a marker shape each, so they read in grey print too.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import matplotlib as mpl
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from kpi_pipeline.metrics.scoring import expected_on_path, tolerance_band
from kpi_pipeline.plan.models import Direction
from kpi_pipeline.reports.html.model import Panel, finite
from kpi_pipeline.reports.wording import COUNT_KINDS, format_value, is_rate_kind

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
STATUS_STYLE: dict[str, tuple[str, str]] = {  # status -> (colour, matplotlib marker)
    "achieved": ("#0072B2", "D"),  # blue, diamond
    "on_track": ("#009E73", "o"),  # bluish green, circle
    "at_risk": ("#E69F00", "^"),  # orange, triangle
    "off_track": ("#D55E00", "X"),  # vermillion, cross
    "insufficient_data": ("#999999", "s"),  # grey, square
}
PATH_COLOUR = "#000000"
BAND_COLOUR = "#CCCCCC"
FORECAST_COLOUR = "#CC79A7"  # reddish purple: not a status colour
VALUE_COLOUR = "#555555"

_RC = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, read by screen readers
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#666666",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
}
_SIZE_INCHES = (7.2, 2.6)


def chart_svg(panel: Panel) -> str:
    """The panel's chart as an `<svg>` element to inline in HTML (no XML prolog)."""
    # A per-chart salt makes the SVG's internal ids (clip paths, markers) unique in the page.
    with mpl.rc_context({**_RC, "svg.hashsalt": panel.chart_id}):
        figure = Figure(figsize=_SIZE_INCHES)
        FigureCanvasSVG(figure)
        ax = figure.add_subplot()
        _draw(ax, panel)
        _fit_margins(figure, ax)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _inline(out.getvalue(), panel.chart_id)


def _draw(ax, panel: Panel) -> None:
    cid, goal, kpi = panel.chart_id, panel.goal, panel.kpi
    dense = len(panel.points) > 60  # a daily series: small markers, light whiskers
    size = 2.5 if dense else 5.0
    points = [p for p in panel.points if p.value is not None]
    deadline = kpi.target.by

    # The straight path from baseline to target, and the band still judged at risk.
    ends = (goal.baseline_date, goal.target_date)
    path = [expected_on_path(goal, day) for day in ends]
    behind = -1.0 if goal.direction is Direction.INCREASE else 1.0
    edge = [v + behind * tolerance_band(goal, v) for v in path]
    ax.fill_between(ends, path, edge, color=BAND_COLOUR, alpha=0.6, lw=0, gid=f"{cid}-band")
    ax.plot(ends, path, color=PATH_COLOUR, lw=1.0, ls="--", gid=f"{cid}-path")

    # Each period's rate interval as a whisker.
    with_ci = [p for p in points if finite(p.ci_low) and finite(p.ci_high)]
    if with_ci:
        ax.vlines(
            [p.midpoint for p in with_ci],
            [p.ci_low for p in with_ci],
            [p.ci_high for p in with_ci],
            color=VALUE_COLOUR,
            lw=0.5 if dense else 0.9,
            alpha=0.6 if dense else 0.9,
            gid=f"{cid}-ci",
        )

    closed = [p for p in points if not p.is_partial]
    partial = [p for p in points if p.is_partial]
    ax.plot(
        [p.midpoint for p in points],
        [p.value for p in points],
        color=VALUE_COLOUR,
        lw=0.6 if dense else 1.0,
        gid=f"{cid}-line",
    )
    for status, (colour, marker) in STATUS_STYLE.items():
        mine = [p for p in closed if p.status == status]
        if mine:
            ax.plot(
                [p.midpoint for p in mine],
                [p.value for p in mine],
                ls="none",
                marker=marker,
                ms=size,
                color=colour,
                mec="white" if not dense else colour,
                mew=0.5,
                gid=f"{cid}-points-{status}",
            )
    if partial:
        # Hollow: the period is still running, its value will move.
        ax.plot(
            [p.midpoint for p in partial],
            [p.value for p in partial],
            ls="none",
            marker="o",
            ms=size + 1,
            mfc="white",
            mec=STATUS_STYLE.get(partial[-1].status, (VALUE_COLOUR, ""))[0],
            mew=1.2,
            gid=f"{cid}-partial",
        )
    marked = [p for p in points if p.marked]
    if marked:
        ax.plot(
            [p.midpoint for p in marked],
            [p.value for p in marked],
            ls="none",
            marker="o",
            ms=size + 6,
            mfc="none",
            mec="#000000",
            mew=0.9,
            gid=f"{cid}-held",
        )

    # The forecast from the latest closed period to the deadline, its interval as a cone.
    start = panel.forecast_from
    if panel.forecast is not None and start is not None and start.value is not None:
        f = panel.forecast
        ax.fill(
            [start.midpoint, deadline, deadline],
            [start.value, f.low, f.high],
            color=FORECAST_COLOUR,
            alpha=0.18,
            lw=0,
            gid=f"{cid}-forecast-interval",
        )
        ax.plot(
            [start.midpoint, deadline],
            [start.value, f.value],
            color=FORECAST_COLOUR,
            lw=1.2,
            ls=":",
            gid=f"{cid}-forecast",
        )
    ax.plot(
        [deadline],
        [kpi.target.value],
        ls="none",
        marker="*",
        ms=11,
        color=PATH_COLOUR,
        gid=f"{cid}-target",
    )
    ax.annotate(
        f"target {format_value(kpi.target.value, kpi.kind.value)}",
        (deadline, kpi.target.value),
        xytext=(-6, 7),
        textcoords="offset points",
        ha="right",
        fontsize=7,
    )

    first = min(p.start for p in panel.points)
    last = max(max(p.end for p in panel.points), deadline)
    pad = dt.timedelta(days=max(2, (last - first).days // 40))
    ax.set_xlim(first - pad, last + pad)
    # The y range holds the data, the visible path and the forecast; a forecast interval
    # wider than that is cut at the edge rather than flattening the series.
    seen = [p.value for p in points] + [v for p in with_ci for v in (p.ci_low, p.ci_high)]
    seen += [expected_on_path(goal, first), kpi.target.value]
    seen += [panel.forecast.value] if panel.forecast is not None else []
    low, high = min(seen), max(seen)
    margin = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    ax.set_ylim(low - margin, high + margin)
    ax.yaxis.set_major_formatter(_formatter(kpi.kind.value))
    ax.grid(axis="y", color="#E5E5E5", lw=0.6)
    ax.set_axisbelow(True)


# Fixed margins, not matplotlib's constrained layout: that layout draws each figure once
# more to measure it, half of the report's drawing time (13 charts: 1.2 s -> 0.6 s). The
# only part that varies is the y tick labels' width, estimated from their text.
_DIGIT_WIDTH_IN = 0.64 * 8 / 72  # DejaVu Sans digit advance, 0.64 em at 8 pt
_TICK_AND_PAD_IN = (3.5 + 3.5) / 72  # matplotlib's default tick length and label pad


def _fit_margins(figure: Figure, ax) -> None:
    """Leave room left of the axes for the widest y tick label, a fixed edge elsewhere."""
    width, height = _SIZE_INCHES
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    labels = ax.yaxis.get_major_formatter().format_ticks(ticks)
    label_in = max((len(label) for label in labels), default=4) * _DIGIT_WIDTH_IN
    left = (label_in + _TICK_AND_PAD_IN + 0.08) / width
    figure.subplots_adjust(
        left=left, right=1 - 0.25 / width, bottom=0.3 / height, top=1 - 0.2 / height
    )


def _formatter(kind: str):
    if is_rate_kind(kind):
        return PercentFormatter(xmax=1.0, decimals=1)
    if kind in COUNT_KINDS:
        return FuncFormatter(lambda v, _: f"{v:,.0f}")
    return FuncFormatter(lambda v, _: f"{v:.3g}")


_ROOT = re.compile(r'<svg\s[^>]*?(viewBox="[^"]*")[^>]*>', re.S)


def _inline(svg: str, chart_id: str) -> str:
    """Drop the XML prolog and fixed size: the SVG scales to its figure's width."""
    body = svg[svg.index("<svg") :]
    match = _ROOT.search(body)
    if match is None:
        raise ValueError("matplotlib wrote an SVG without a viewBox")
    root = (
        f'<svg xmlns="http://www.w3.org/2000/svg" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" {match.group(1)} '
        f'class="chart-svg" role="img" aria-labelledby="{chart_id}-caption">'
    )
    # The metadata block names matplotlib's site: not needed to draw, left out.
    return root + re.sub(r"<metadata>.*?</metadata>", "", body[match.end() :], flags=re.S)
