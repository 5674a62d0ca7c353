"""A partial period against the same elapsed days of the previous period."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from kpi_pipeline.metrics.period_to_date import period_to_date, previous_span
from kpi_pipeline.plan.models import Grain

D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("start", "as_of", "grain", "fy", "span"),
    [
        # Wednesday of W03: Monday to Wednesday of W02.
        pytest.param(
            "2026-01-12", "2026-01-14", Grain.WEEK, 1, ("2026-01-05", "2026-01-07"), id="week"
        ),
        # Monday only: Monday only.
        pytest.param(
            "2026-01-12", "2026-01-12", Grain.WEEK, 1, ("2026-01-05", "2026-01-05"), id="day-one"
        ),
        # ISO week across new year: W01 of 2026 starts Mon 29 Dec 2025; Thursday 1 January
        # compares with Mon 22 to Thu 25 December.
        pytest.param(
            "2025-12-29",
            "2026-01-01",
            Grain.WEEK,
            1,
            ("2025-12-22", "2025-12-25"),
            id="week-new-year",
        ),
        # 10 March so far: 1 to 10 February.
        pytest.param(
            "2026-03-01", "2026-03-10", Grain.MONTH, 1, ("2026-02-01", "2026-02-10"), id="month"
        ),
        # 31 March so far is longer than February: the whole of February, no further.
        pytest.param(
            "2026-03-01",
            "2026-03-31",
            Grain.MONTH,
            1,
            ("2026-02-01", "2026-02-28"),
            id="month-capped",
        ),
        # Fiscal year from April: Q1 starts 1 April; 15 days in, against 1 to 15 January (Q4).
        pytest.param(
            "2026-04-01",
            "2026-04-15",
            Grain.QUARTER,
            4,
            ("2026-01-01", "2026-01-15"),
            id="fiscal-quarter",
        ),
    ],
)
def test_previous_span(start, as_of, grain, fy, span):
    assert previous_span(D(start), D(as_of), grain, fy) == (D(span[0]), D(span[1]))


def test_previous_span_refuses_an_as_of_before_the_period():
    with pytest.raises(ValueError, match="before the period"):
        previous_span(D("2026-01-12"), D("2026-01-11"), Grain.WEEK)


def _daily(kpi_id, rows):
    return [
        {"kpi_id": kpi_id, "date": D(day), "segment_type": "all", "segment": "all",
         "numerator": n, "denominator": d}
        for day, n, d in rows
    ]  # fmt: skip


def test_period_to_date_compares_ratio_of_sums_and_volume_sums():
    daily = pd.DataFrame(
        _daily(
            "conv",
            [
                # W02 Monday to Wednesday: 6 / 300; Thursday (10 / 100) is outside the span.
                ("2026-01-05", 1, 100), ("2026-01-06", 2, 100), ("2026-01-07", 3, 100),
                ("2026-01-08", 10, 100),
                # W03 so far, Monday to Wednesday: 12 / 400 = 0.03.
                ("2026-01-12", 4, 200), ("2026-01-13", 4, 100), ("2026-01-14", 4, 100),
            ],
        )
        + _daily("vol", [("2026-01-05", 5, 0), ("2026-01-06", 7, 0), ("2026-01-12", 9, 0)])
    )  # fmt: skip
    scores = pd.DataFrame(
        [
            # Partial W03 of conv: 12/400 now vs 6/300 = 0.02 the same days before.
            ("conv", "2026-01-12", "2026-W03", 12.0, 400.0, 0.03, 0.025, "achieved", True),
            # Closed W02: not "to date", left out.
            ("conv", "2026-01-05", "2026-W02", 16.0, 400.0, 0.04, 0.024, "achieved", False),
            # Volume, Monday only (as of the 12th): 9 vs last Monday's 5, not 5 + 7.
            ("vol", "2026-01-12", "2026-W03", 9.0, None, 9.0, 8.0, "on_track", True),
            # A month cut by the start of history (loaded from the 5th) is not "to date".
            ("conv", "2026-01-01", "2026-01", 28.0, 800.0, 0.035, 0.024, "achieved", True),
        ],
        columns=["kpi_id", "period_start", "period_label", "numerator", "denominator",
                 "value", "expected", "status", "is_partial"],
    )  # fmt: skip
    scores = scores.assign(
        grain=["week", "week", "week", "month"], segment_type="all", segment="all"
    )
    scores["as_of_date"] = [D("2026-01-14"), D("2026-01-14"), D("2026-01-12"), D("2026-01-14")]
    result = period_to_date(scores, daily)
    assert list(result["kpi_id"]) == ["conv", "vol"]
    conv, vol = result.to_dict("records")
    assert (conv["days_elapsed"], conv["previous_value"]) == (3, pytest.approx(6 / 300, abs=1e-12))
    assert conv["change"] == pytest.approx(0.03 - 0.02, abs=1e-12)
    assert (conv["previous_start"].date(), conv["previous_end"].date()) == (
        D("2026-01-05"),
        D("2026-01-07"),
    )
    assert (vol["days_elapsed"], vol["previous_value"], vol["change"]) == (1, 5.0, 4.0)


def test_previous_span_before_history_has_no_value():
    # W02 is the first loaded week: its "previous" W01 was never loaded, so no comparison
    # (a sum over zero loaded days would read as a collapse to 0).
    daily = pd.DataFrame(_daily("conv", [("2026-01-05", 1, 100)]))
    scores = pd.DataFrame(
        [("conv", "week", "all", "all", "2026-01-05", "2026-W02", 1.0, 100.0, 0.01, 0.02,
          "off_track", True, D("2026-01-05"))],
        columns=["kpi_id", "grain", "segment_type", "segment", "period_start", "period_label",
                 "numerator", "denominator", "value", "expected", "status", "is_partial",
                 "as_of_date"],
    )  # fmt: skip
    row = period_to_date(scores, daily).iloc[0]
    assert pd.isna(row["previous_value"]) and pd.isna(row["change"])
