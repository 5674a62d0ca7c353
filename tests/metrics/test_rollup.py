"""Objective status from its KPIs, and the tactics that drag a KPI down."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kpi_pipeline.metrics.rollup import KpiStatus, objective_status, rank_tactics
from kpi_pipeline.metrics.scoring import Status
from kpi_pipeline.plan.scoring import RollupMode

A, OT, AR, OFF, NA = (
    Status.ACHIEVED,
    Status.ON_TRACK,
    Status.AT_RISK,
    Status.OFF_TRACK,
    Status.INSUFFICIENT_DATA,
)


def _kpis(*pairs):
    return [KpiStatus(f"k{i}", status, weight) for i, (status, weight) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("kpis", "mode", "status", "score"),
    [
        # Equal weights, one off (2) and one on track (0): mean 1 -> at risk.
        pytest.param(_kpis((OFF, 1), (OT, 1)), RollupMode.WEIGHTED, AR, 1.0, id="equal"),
        # The same KPIs, the on-track one weighted 3: (2 + 0) / 4 = 0.5 -> at risk (a tie
        # at the half rounds to the worse status).
        pytest.param(_kpis((OFF, 1), (OT, 3)), RollupMode.WEIGHTED, AR, 0.5, id="tie-rounds-worse"),
        # Weighted 4 to 1 for on track: 2/5 = 0.4 -> on track.
        pytest.param(_kpis((OFF, 1), (OT, 4)), RollupMode.WEIGHTED, OT, 0.4, id="weights-matter"),
        # Worst-of ignores weights: any off-track KPI makes the objective off track.
        pytest.param(_kpis((OFF, 1), (OT, 4)), RollupMode.WORST_OF, OFF, 2.0, id="worst-of"),
        # Two off, one at risk: (2 + 2 + 1) / 3 = 1.667 -> off track.
        pytest.param(_kpis((OFF, 1), (OFF, 1), (AR, 1)), RollupMode.WEIGHTED, OFF, 5 / 3, id="off"),
        # Achieved counts as on track, unless every KPI is achieved.
        pytest.param(_kpis((A, 1), (OT, 1)), RollupMode.WEIGHTED, OT, 0.0, id="achieved-mixed"),
        pytest.param(_kpis((A, 1), (A, 2)), RollupMode.WEIGHTED, A, 0.0, id="all-achieved"),
        # A KPI without enough data neither helps nor hurts: only the off one counts.
        pytest.param(_kpis((NA, 5), (OFF, 1)), RollupMode.WEIGHTED, OFF, 2.0, id="na-ignored"),
        # Nothing scored at all.
        pytest.param(_kpis((NA, 1)), RollupMode.WEIGHTED, NA, None, id="no-data"),
    ],
)
def test_objective_status(kpis, mode, status, score):
    result = objective_status(kpis, mode)
    assert result.status is status
    if score is None:
        assert result.score is None
    else:
        assert result.score == pytest.approx(score, abs=1e-12)


def _tactic_rows(kpi_id: str, rows: list[tuple[str, str, float, float, str, bool]]):
    return pd.DataFrame(
        [
            {
                "kpi_id": kpi_id,
                "grain": "week",
                "segment_type": "tactic",
                "segment": tactic,
                "period_start": pd.Timestamp(start),
                "period_label": start,
                "value": value,
                "expected": expected,
                "denominator": 1000.0,
                "status": status,
                "is_partial": partial,
            }
            for tactic, start, value, expected, status, partial in rows
        ]
    )


def test_rank_tactics_worst_first_direction_aware_latest_closed_only():
    up = _tactic_rows(
        "conv",
        [
            # Latest closed week 2026-01-05: paid 0.5 points behind, email ahead, social
            # 1 point behind -> social drags most.
            ("email", "2026-01-05", 0.030, 0.025, "achieved", False),
            ("paid", "2026-01-05", 0.020, 0.025, "off_track", False),
            ("social", "2026-01-05", 0.015, 0.025, "off_track", False),
            # Too few sessions: no gap, ranked last.
            ("video", "2026-01-05", 0.001, 0.025, "insufficient_data", False),
            # A partial week must not be used, nor an older closed one.
            ("paid", "2026-01-12", 0.001, 0.025, "off_track", True),
            ("email", "2025-12-29", 0.001, 0.025, "off_track", False),
        ],
    )
    down = _tactic_rows(
        "bounce",
        [
            # Lower is better: 0.60 against expected 0.50 is 0.10 behind, 0.45 is ahead.
            ("email", "2026-01-05", 0.45, 0.50, "on_track", False),
            ("paid", "2026-01-05", 0.60, 0.50, "off_track", False),
        ],
    )
    ranked = rank_tactics(
        pd.concat([up, down]),
        {"conv": "increase", "bounce": "decrease"},
        {"conv": "sell", "bounce": "engage"},
    )
    table = [
        (r.kpi_id, r.tactic, r.rank, None if math.isnan(r.gap) else round(r.gap, 6))
        for r in ranked.itertuples()
    ]
    assert table == [
        ("bounce", "paid", 1, -0.10),
        ("bounce", "email", 2, 0.05),
        ("conv", "social", 1, -0.01),
        ("conv", "paid", 2, -0.005),
        ("conv", "email", 3, 0.005),
        ("conv", "video", 4, None),
    ]
    assert set(ranked["period_label"]) == {"2026-01-05"}
    assert ranked.set_index("kpi_id")["objective_id"].to_dict() == {
        "bounce": "engage",
        "conv": "sell",
    }
