"""The alert state machine: which closed periods deserve a message, and which must wait.

Per series (kpi, grain, segment type, segment) only the latest closed period whose data
has settled is judged, against the status last *sent* for the series:

- worse than last sent, and a status the matching rule alerts on → `slipped`;
- back to on track or achieved after a bad status was sent → `recovered`;
- still the bad status last sent, longer than the rule's `renotify_hours` → `reminder`;
- anything else (a repeat run, an improvement short of on track, too little data) → nothing.

Closed periods newer than that one whose data is provisional or flagged are recorded as
held. A series whose state already has a newer settled period is left alone, so re-running
old days never re-alerts history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from kpi_pipeline.alerts.model import (
    GOOD_STATUSES,
    Alert,
    AlertKind,
    clean_number,
    severity,
)
from kpi_pipeline.plan.alerts import AlertRule, AlertsConfig

SERIES = ("kpi_id", "grain", "segment_type", "segment")
STATE_COLUMNS = [
    *SERIES,
    "period_start",
    "period_label",
    "status",
    "last_sent_status",
    "last_sent_at",
    "hold_reason",
    "evaluated_at",
]


@dataclass(frozen=True)
class Evaluation:
    state: pd.DataFrame  # rows to upsert into the alert state, keyed by series and period
    alerts: list[Alert] = field(default_factory=list)
    held: int = 0


def matching_rule(rules: list[AlertRule], grain: str, segment_type: str) -> AlertRule | None:
    """The first rule covering the grain and segment type (plan order), or None."""
    for rule in rules:
        if grain in rule.grains and segment_type in rule.segment_types:
            return rule
    return None


def decide(
    status: str,
    last_sent: str | None,
    last_sent_at: dt.datetime | None,
    rule: AlertRule,
    now: dt.datetime,
) -> AlertKind | None:
    """The message a period's `status` calls for, given what the series last sent."""
    if status in rule.statuses and severity(status) > severity(last_sent):
        return AlertKind.SLIPPED
    if status in GOOD_STATUSES and severity(last_sent) > 0:
        return AlertKind.RECOVERED
    if (
        rule.renotify_hours is not None
        and status in rule.statuses
        and status == last_sent
        and last_sent_at is not None
        and now - last_sent_at >= dt.timedelta(hours=rule.renotify_hours)
    ):
        return AlertKind.REMINDER
    return None


def evaluate(
    scores: pd.DataFrame,
    state: pd.DataFrame,
    config: AlertsConfig,
    now: dt.datetime,
    deadlines: Mapping[str, dt.date] | None = None,
) -> Evaluation:
    """Judge `kpi_scores` rows against the alert `state`; return state rows and alerts."""
    deadlines = deadlines or {}
    closed = scores[~scores["is_partial"].astype(bool)]
    history = _history_by_series(state)
    rows: list[dict] = []
    alerts: list[Alert] = []
    held = 0
    for key, series in closed.groupby(list(SERIES), sort=True):
        rule = matching_rule(config.rules, key[1], key[2])
        if rule is None:
            continue
        series = series.assign(_start=pd.to_datetime(series["period_start"]).dt.date)
        series = series.sort_values("_start")
        past = history.get(tuple(key), [])
        settled = series[series["hold_reason"].isna()]
        latest = settled.iloc[-1] if not settled.empty else None
        if latest is not None and any(
            h["period_start"] > latest["_start"] and _blank(h["hold_reason"]) for h in past
        ):
            continue  # a newer period was judged already: this is a re-run of old days
        before = [h for h in past if _blank(h["hold_reason"])]
        if latest is not None:
            before = [h for h in before if h["period_start"] <= latest["_start"]]
        last = before[-1] if before else None
        last_sent = None if last is None else _text(last["last_sent_status"])
        last_sent_at = None if last is None else _instant(last["last_sent_at"])
        # What the message calls the previous status: the one last sent, else the one last
        # judged, else none (a series never judged reads as new, not "on track → ...").
        previous = last_sent or (None if last is None else _text(last["status"]))
        if latest is not None:
            kind = decide(latest["status"], last_sent, last_sent_at, rule, now)
            if kind is not None:
                alerts.append(_alert(latest, kind, previous, now, deadlines))
                last_sent, last_sent_at = latest["status"], now
            rows.append(_state_row(latest, last_sent, last_sent_at, None, now))
        newer = series if latest is None else series[series["_start"] > latest["_start"]]
        for _, row in newer.iterrows():
            held += 1
            rows.append(_state_row(row, last_sent, last_sent_at, row["hold_reason"], now))
    frame = pd.DataFrame(rows, columns=STATE_COLUMNS)
    return Evaluation(frame, alerts, held)


def _history_by_series(state: pd.DataFrame) -> dict[tuple, list[dict]]:
    result: dict[tuple, list[dict]] = {}
    if state.empty:
        return result
    state = state.assign(period_start=pd.to_datetime(state["period_start"]).dt.date)
    for record in state.sort_values("period_start").to_dict("records"):
        result.setdefault(tuple(record[c] for c in SERIES), []).append(record)
    return result


def _state_row(row, last_sent, last_sent_at, hold_reason, now) -> dict:
    return {
        **{c: row[c] for c in SERIES},
        "period_start": row["_start"],
        "period_label": row["period_label"],
        "status": row["status"],
        "last_sent_status": last_sent,
        "last_sent_at": last_sent_at,
        "hold_reason": hold_reason,
        "evaluated_at": now,
    }


def _alert(row, kind: AlertKind, previous: str | None, now: dt.datetime, deadlines) -> Alert:
    start = row["_start"].isoformat()
    deadline = deadlines.get(row["kpi_id"])
    return Alert(
        alert_id=":".join(
            [
                *(str(row[c]) for c in SERIES),
                start,
                kind.value,
                row["status"],
                f"{now:%Y%m%dT%H%M%S}",
            ]
        ),
        kind=kind,
        kpi_id=row["kpi_id"],
        kpi_label=row["kpi_label"],
        kpi_kind=row["kind"],
        objective_title=row["objective_title"],
        grain=row["grain"],
        segment_type=row["segment_type"],
        segment=row["segment"],
        period_start=start,
        period_label=row["period_label"],
        previous_status=previous,
        status=row["status"],
        value=clean_number(row["value"]),
        expected=clean_number(row["expected"]),
        target=clean_number(row["target"]),
        target_date=None if deadline is None else deadline.isoformat(),
        ci_low=clean_number(row["ci_low"]),
        ci_high=clean_number(row["ci_high"]),
        forecast=clean_number(row["forecast_at_deadline"]),
        forecast_low=clean_number(row.get("forecast_low")),
        forecast_high=clean_number(row.get("forecast_high")),
        projected_status=_text(row["projected_status"]),
    )


def _blank(value: object) -> bool:
    return _text(value) is None


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value)


def _instant(value: object) -> dt.datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.to_pydatetime()
