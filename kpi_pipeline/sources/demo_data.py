"""Deterministic demo data: GA4-style daily CSV exports for the Northwind demo plan.

The numbers are synthetic but shaped so the demo scorecard tells a story: conversion rate
climbs towards its target, engagement rate slips against its target, and the quote form
completion rate jumps when the form is redesigned on 2026-03-01.

Every day is drawn from its own random generator seeded with ``(seed, day.toordinal())``,
so a day's rows never depend on the range it was generated in: extending the range only
adds days, and the same arguments always give byte-identical files.

When ``inject_bad_rows`` is set, `write_demo_exports` adds three malformed rows (see
`BAD_ROWS`) so the demo can show quarantine working. Each one is inserted directly after
the last row of its anchor day, in that day's monthly file, and only if the requested
range contains the anchor day:

* ``ga4_export_2025-09.csv``, after the rows of 2025-09-14: ``sessions`` is ``n/a``.
* ``ga4_export_2026-04.csv``, after the rows of 2026-04-30: dated ``2026-04-31``.
* ``ga4_export_2026-08.csv``, after the rows of 2026-08-09: the last field is missing.

Their landing pages are not in the traffic catalogue, so they never share a key with a
generated row.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEMO_START = dt.date(2025, 6, 1)
DEMO_END = dt.date(2026, 11, 25)

KEY_COLUMNS = (
    "date",
    "session_source",
    "session_medium",
    "session_campaign",
    "landing_page",
    "device_category",
)
COUNT_COLUMNS = (
    "sessions",
    "engaged_sessions",
    "key_events",
    "form_start_events",
    "form_submit_events",
)
COLUMNS = KEY_COLUMNS + COUNT_COLUMNS

EXPORT_GLOB = "ga4_export_*.csv"

# --- Trends the demo scorecard is calibrated against ------------------------------------
_TREND_ORIGIN = DEMO_START
_TREND_DAYS = (DEMO_END - DEMO_START).days  # 542
_CONVERSION_START, _CONVERSION_END = 0.018, 0.0242
_ENGAGEMENT_START, _ENGAGEMENT_END = 0.52, 0.535
_ENGAGEMENT_WIGGLE = 0.01
_COMPLETION_BEFORE = 0.34
_FORM_REDESIGN = dt.date(2026, 3, 1)
_COMPLETION_AFTER_START, _COMPLETION_AFTER_END = 0.45, 0.495
_FORM_STARTS_PER_DAY = 27.0
_FORM_STARTS_ON_QUOTE_ROWS = 0.9  # the rest trickle in from people who browse to the form

_SESSIONS_PER_DAY = 4000.0
_WEEKEND_LIFT = 1.15
_DEVICES = ("desktop", "mobile", "tablet")
_DEVICE_MIX = (0.40, 0.52, 0.08)
_DEVICE_CONVERSION = (1.3, 0.7, 1.0)
_DEVICE_ENGAGEMENT = (1.08, 0.95, 1.0)
_DEVICE_COMPLETION = (1.1, 0.9, 1.0)  # long forms are harder on a phone


@dataclass(frozen=True)
class _Tactic:
    """One source/medium/campaign with its landing pages and behaviour multipliers."""

    source: str
    medium: str
    campaign: str
    share: float  # of all sessions, before daily mix noise
    pages: tuple[tuple[str, float], ...]  # (landing page, share within this tactic)
    conversion: float = 1.0
    engagement: float = 1.0
    devices: tuple[float, float, float] = _DEVICE_MIX
    quote_intent: float = 0.0  # relative form-start propensity per session


# Campaign names "nl" and "seasonal" are placeholders resolved per day (see _campaigns_for).
_CATALOGUE: tuple[_Tactic, ...] = (
    _Tactic("google", "organic", "(not set)", 0.30,
            (("/", 0.60), ("/boots", 0.32), ("/quote", 0.08)),
            conversion=1.0, engagement=1.0),
    _Tactic("(direct)", "(none)", "(not set)", 0.17, (("/", 0.85), ("/quote", 0.15)),
            conversion=1.2, engagement=1.05),
    _Tactic("newsletter", "email", "nl", 0.06, (("/tents", 0.6), ("/boots", 0.4)),
            conversion=2.0, engagement=1.1),
    _Tactic("klaviyo", "email", "cart_abandon_flow", 0.03, (("/cart", 1.0),),
            conversion=2.4, engagement=1.1),
    _Tactic("google", "cpc", "brand_northwind", 0.08, (("/", 1.0),),
            conversion=2.0, engagement=1.05),
    _Tactic("google", "cpc", "generic_hiking_boots", 0.06, (("/boots", 1.0),),
            conversion=0.9, engagement=0.85),
    _Tactic("google", "cpc", "generic_tents", 0.06, (("/tents", 1.0),),
            conversion=0.9, engagement=0.85),
    _Tactic("bing", "cpc", "generic_backpacks", 0.03, (("/backpacks", 1.0),),
            conversion=0.8, engagement=0.85),
    _Tactic("instagram", "social", "seasonal", 0.07, (("/", 0.3), ("/tents", 0.7)),
            conversion=0.4, engagement=1.25, devices=(0.22, 0.72, 0.06)),
    _Tactic("youtube", "video", "howto_tent_setup", 0.04, (("/guides/tent-setup", 1.0),),
            conversion=0.4, engagement=1.3, devices=(0.35, 0.55, 0.10)),
    _Tactic("blog", "content", "guide_sleeping_bags", 0.05,
            (("/guides/sleeping-bags", 0.8), ("/sleeping-bags", 0.2)),
            conversion=0.6, engagement=1.25),
    # Group orders are planned at a desk, and people who click these ads want a quote,
    # not a checkout.
    _Tactic("google", "cpc", "quote_group_orders", 0.015, (("/quote", 1.0),),
            conversion=0.5, engagement=0.95, devices=(0.55, 0.38, 0.07), quote_intent=2.0),
    _Tactic("facebook", "referral", "(not set)", 0.035, (("/", 0.7), ("/boots", 0.3)),
            conversion=0.7, engagement=0.8),
)  # fmt: skip

# Landing-page effects on top of the tactic's: the quote page is not a shop page.
_PAGE_CONVERSION = {"/quote": 0.3, "/guides/tent-setup": 0.6, "/guides/sleeping-bags": 0.6}
_QUOTE_PAGE_INTENT = 1.0


def _build_template() -> dict[str, np.ndarray]:
    """Flatten the catalogue into one template row per (tactic, page, device)."""
    rows: list[tuple] = []
    for t_index, tactic in enumerate(_CATALOGUE):
        for page, page_share in tactic.pages:
            for d_index, device in enumerate(_DEVICES):
                intent = tactic.quote_intent or (_QUOTE_PAGE_INTENT if page == "/quote" else 0.0)
                rows.append(
                    (
                        t_index,
                        tactic.source,
                        tactic.medium,
                        tactic.campaign,
                        page,
                        device,
                        page_share * tactic.devices[d_index],
                        tactic.conversion
                        * _PAGE_CONVERSION.get(page, 1.0)
                        * _DEVICE_CONVERSION[d_index],
                        tactic.engagement * _DEVICE_ENGAGEMENT[d_index],
                        _DEVICE_COMPLETION[d_index],
                        intent,
                    )
                )
    cols = list(zip(*rows, strict=True))
    return {
        "tactic": np.array(cols[0], dtype=np.int64),
        "source": np.array(cols[1], dtype=object),
        "medium": np.array(cols[2], dtype=object),
        "campaign": np.array(cols[3], dtype=object),
        "page": np.array(cols[4], dtype=object),
        "device": np.array(cols[5], dtype=object),
        "within_share": np.array(cols[6], dtype=float),
        "conversion": np.array(cols[7], dtype=float),
        "engagement": np.array(cols[8], dtype=float),
        "completion": np.array(cols[9], dtype=float),
        "intent": np.array(cols[10], dtype=float),
    }


_TEMPLATE = _build_template()
_TACTIC_SHARES = np.array([t.share for t in _CATALOGUE], dtype=float)
_NEWSLETTER_ROWS = _TEMPLATE["campaign"] == "nl"
_SEASONAL_ROWS = _TEMPLATE["campaign"] == "seasonal"


def _yearly_shape(day_of_year: float) -> float:
    """Unnormalised yearly seasonality: camping and holiday peaks, a February trough."""

    def bump(centre: float, width: float) -> float:
        # Circular distance so the December peak wraps into January.
        d = abs(day_of_year - centre)
        d = min(d, 365.25 - d)
        return math.exp(-0.5 * (d / width) ** 2)

    return 1.0 + 0.20 * bump(160, 28) + 0.25 * bump(340, 22) - 0.20 * bump(41, 25)


# Normalise so the yearly factor averages 1 and the 4,000 sessions/day target holds.
_YEARLY_MEAN = float(np.mean([_yearly_shape(d) for d in range(1, 366)]))
# Weekdays sit slightly below 1 so that a week (5 weekdays, 2 weekend days) averages 1.
_WEEKDAY_FACTOR = 7.0 / (5.0 + 2.0 * _WEEKEND_LIFT)


def _expected_sessions(day: dt.date) -> float:
    weekly = _WEEKDAY_FACTOR * (_WEEKEND_LIFT if day.weekday() >= 5 else 1.0)
    yearly = _yearly_shape(day.timetuple().tm_yday) / _YEARLY_MEAN
    return _SESSIONS_PER_DAY * weekly * yearly


def conversion_trend(day: dt.date) -> float:
    """Target aggregate key_events/sessions for a day (linear, same slope past the demo)."""
    t = (day - _TREND_ORIGIN).days
    rate = _CONVERSION_START + (_CONVERSION_END - _CONVERSION_START) * t / _TREND_DAYS
    return max(rate, 0.001)


def engagement_trend(day: dt.date) -> float:
    """Target aggregate engaged_sessions/sessions for a day: a slow drift plus a small wiggle."""
    t = (day - _TREND_ORIGIN).days
    drift = _ENGAGEMENT_START + (_ENGAGEMENT_END - _ENGAGEMENT_START) * t / _TREND_DAYS
    return drift + _ENGAGEMENT_WIGGLE * math.sin(2.0 * math.pi * t / 365.25)


def completion_trend(day: dt.date) -> float:
    """Target form_submit/form_start for a day: flat, then a step up at the form redesign."""
    if day < _FORM_REDESIGN:
        return _COMPLETION_BEFORE
    span = (DEMO_END - _FORM_REDESIGN).days  # 269
    t = (day - _FORM_REDESIGN).days
    rate = _COMPLETION_AFTER_START + (_COMPLETION_AFTER_END - _COMPLETION_AFTER_START) * t / span
    return min(rate, 0.9)


def _seasonal_campaign(day: dt.date) -> str:
    """Instagram campaign running in a given month."""
    month = day.month
    if 3 <= month <= 6:
        return "spring_drop"
    if 7 <= month <= 8:
        return "summer_trails"
    if 9 <= month <= 11:
        return "fall_layers"
    if month == 12:
        return "holiday_gifts"
    return "winter_clearance"


def _campaigns_for(day: dt.date) -> np.ndarray:
    campaigns = _TEMPLATE["campaign"].copy()
    campaigns[_NEWSLETTER_ROWS] = f"nl_{day.year}_{day.month:02d}"
    campaigns[_SEASONAL_ROWS] = _seasonal_campaign(day)
    return campaigns


def _normalised(rate: float, multipliers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-row rates whose weighted mean is exactly `rate`, keeping the multipliers' ratios.

    Normalising against the day's realised weights (not the expected ones) keeps the
    aggregate on the trend whatever the day's traffic mix turned out to be.
    """
    total = weights.sum()
    if total <= 0:
        return np.full(multipliers.shape, rate)
    return rate * multipliers * total / (weights * multipliers).sum()


def _draw_day(day: dt.date, seed: int) -> np.ndarray:
    """Draw all template rows for one day: an int array (rows x 5 count columns)."""
    rng = np.random.default_rng([seed, day.toordinal()])
    tpl = _TEMPLATE

    # Traffic: a noisy day level, a noisy tactic mix, then Poisson sessions per row.
    level = _expected_sessions(day) * rng.lognormal(0.0, 0.05)
    mix = _TACTIC_SHARES * rng.lognormal(0.0, 0.15, size=_TACTIC_SHARES.size)
    mix /= mix.sum()
    sessions = rng.poisson(level * mix[tpl["tactic"]] * tpl["within_share"])

    engaged_p = np.clip(_normalised(engagement_trend(day), tpl["engagement"], sessions), 0.0, 0.98)
    engaged = rng.binomial(sessions, engaged_p)

    # Key events are drawn from engaged sessions (GA4 counts a session with a key event as
    # engaged), so p/engaged_p keeps the expected key_events at sessions * p.
    convert_p = _normalised(conversion_trend(day), tpl["conversion"], sessions)
    key_events = rng.binomial(engaged, np.clip(convert_p / np.maximum(engaged_p, 1e-9), 0, 1))

    # Quote form starts: most on quote rows, a trickle elsewhere, ~27/day in total.
    quote_rows = tpl["intent"] > 0
    lam = np.zeros(sessions.shape)
    for mask, share, intent in (
        (quote_rows, _FORM_STARTS_ON_QUOTE_ROWS, tpl["intent"]),
        (~quote_rows, 1.0 - _FORM_STARTS_ON_QUOTE_ROWS, np.full(sessions.shape, 1.0)),
    ):
        weight = np.where(mask, sessions * intent, 0.0)
        if weight.sum() > 0:
            lam += _FORM_STARTS_PER_DAY * share * weight / weight.sum()
    start_p = np.clip(lam / np.maximum(sessions, 1), 0.0, 1.0)
    form_starts = rng.binomial(sessions, start_p)

    submit_p = np.clip(_normalised(completion_trend(day), tpl["completion"], form_starts), 0.0, 1.0)
    form_submits = rng.binomial(form_starts, submit_p)

    return np.column_stack([sessions, engaged, key_events, form_starts, form_submits])


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def build_demo_frame(start: dt.date, end: dt.date, seed: int = 7) -> pd.DataFrame:
    """Build the demo GA4 rows for every day in [start, end].

    Args:
        start: First day, inclusive.
        end: Last day, inclusive.
        seed: Seed mixed with each day's ordinal; a day's rows depend only on both.

    Returns:
        One row per (date, source, medium, campaign, landing page, device) with sessions,
        in `COLUMNS` order; `date` is an ISO string and rows with no sessions are omitted,
        as GA4 exports omit them.
    """
    counts: list[np.ndarray] = []
    keep_parts: list[np.ndarray] = []
    campaigns: list[np.ndarray] = []
    dates: list[str] = []
    sizes: list[int] = []
    for day in _days(start, end):
        drawn = _draw_day(day, seed)
        keep = np.flatnonzero(drawn[:, 0] > 0)
        counts.append(drawn[keep])
        keep_parts.append(keep)
        campaigns.append(_campaigns_for(day)[keep])
        dates.append(day.isoformat())
        sizes.append(keep.size)

    rows = np.concatenate(keep_parts)
    values = np.concatenate(counts).astype(np.int64)
    data = {
        "date": np.repeat(np.array(dates, dtype=object), sizes),
        "session_source": _TEMPLATE["source"][rows],
        "session_medium": _TEMPLATE["medium"][rows],
        "session_campaign": np.concatenate(campaigns),
        "landing_page": _TEMPLATE["page"][rows],
        "device_category": _TEMPLATE["device"][rows],
    }
    for i, name in enumerate(COUNT_COLUMNS):
        data[name] = values[:, i]
    return pd.DataFrame(data, columns=list(COLUMNS))


@dataclass(frozen=True)
class BadRow:
    """A deliberately malformed export line and where it goes."""

    anchor: dt.date  # inserted after this day's rows, in this day's monthly file
    line: str
    problem: str


BAD_ROWS: tuple[BadRow, ...] = (
    BadRow(
        dt.date(2025, 9, 14),
        "2025-09-14,google,organic,(not set),/gift-cards,desktop,n/a,31,1,0,0",
        "sessions is not a number",
    ),
    BadRow(
        dt.date(2026, 4, 30),
        "2026-04-31,(direct),(none),(not set),/stores/toronto,mobile,212,108,4,0,0",
        "date does not exist (April has 30 days)",
    ),
    BadRow(
        dt.date(2026, 8, 9),
        "2026-08-09,newsletter,email,nl_2026_08,/returns,mobile,57,33,2,0",
        "missing the trailing form_submit_events field",
    ),
)


def _export_name(month: str) -> str:
    return f"ga4_export_{month}.csv"


def write_demo_exports(
    out_dir: Path,
    start: dt.date,
    end: dt.date,
    seed: int = 7,
    inject_bad_rows: bool = True,
) -> list[Path]:
    """Write one GA4-style CSV per calendar month of [start, end] into `out_dir`.

    Args:
        out_dir: Folder for the files; created if missing. Existing ``ga4_export_*.csv``
            files are removed first so a rerun leaves exactly the same set of files.
        start: First day, inclusive.
        end: Last day, inclusive.
        seed: Seed passed to `build_demo_frame`.
        inject_bad_rows: Add the `BAD_ROWS` whose anchor day is in the range.

    Returns:
        Paths of the written files, sorted.
    """
    frame = build_demo_frame(start, end, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(EXPORT_GLOB):
        stale.unlink()

    bad_rows = [b for b in BAD_ROWS if inject_bad_rows and start <= b.anchor <= end]
    months = frame["date"].str.slice(0, 7)
    paths: list[Path] = []
    for month in sorted(months.unique()):
        part = frame[months == month]
        lines = part.to_csv(index=False, lineterminator="\n").splitlines()
        # Insert later rows first so earlier insertion points stay valid.
        for bad in sorted(bad_rows, key=lambda b: b.anchor, reverse=True):
            if bad.anchor.strftime("%Y-%m") != month:
                continue
            position = 1 + int((part["date"] <= bad.anchor.isoformat()).sum())
            lines.insert(position, bad.line)
        path = out_dir / _export_name(month)
        path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
        paths.append(path)
    return sorted(paths)
