"""Wilson score intervals, checked against closed forms worked out by hand.

Most cases use the confidence whose two-sided normal quantile is exactly z = 2
(2·Φ(2) - 1 = 0.9544997361036416), so z² = 4 and every bound is a short fraction.
Wilson: centre = (p + z²/2n) / (1 + z²/n), half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
"""

from __future__ import annotations

import math

import pytest

from kpi_pipeline.metrics.intervals import wilson_interval, z_score

Z2 = 0.9544997361036416  # confidence with z = 2


def test_z_score_of_common_levels():
    # The textbook quantiles: 1.96 for 95 %, 2 for 95.45 %, 2.5758 for 99 %.
    assert z_score(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
    assert z_score(Z2) == pytest.approx(2.0, abs=1e-12)
    assert z_score(0.99) == pytest.approx(2.5758293035489004, abs=1e-12)


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # p = 0.5, n = 10: z²/n = 0.4, centre = (0.5 + 0.2) / 1.4 = 0.5,
        # half = 2·sqrt(0.025 + 0.01) / 1.4 = sqrt(0.035) / 0.7 (symmetric around 0.5).
        pytest.param(5, 10, 0.5 - math.sqrt(0.035) / 0.7, 0.5 + math.sqrt(0.035) / 0.7, id="half"),
        # Zero successes in 16: centre = (0 + 0.125) / 1.25 = 0.1, half = 2·(1/16) / 1.25 = 0.1
        # -> [0, 0.2]: a zero rate still has a positive upper bound (Wald would say [0, 0]).
        pytest.param(0, 16, 0.0, 0.2, id="zero-successes"),
        # All 16: the mirror image, [0.8, 1]; the bound never passes 1.
        pytest.param(16, 16, 0.8, 1.0, id="all-successes"),
        # Large n, p = 0.25 in 10,000: z²/n = 0.0004, centre = 0.2502 / 1.0004,
        # half = 2·sqrt(0.1875/10^4 + 10^-8) / 1.0004 = 2·sqrt(1.876e-5) / 1.0004.
        pytest.param(
            2500,
            10_000,
            (0.2502 - 2 * math.sqrt(1.876e-5)) / 1.0004,
            (0.2502 + 2 * math.sqrt(1.876e-5)) / 1.0004,
            id="large-n",
        ),
        # Small n, same p = 0.25 in 4: z²/n = 1, centre = (0.25 + 0.5) / 2 = 0.375,
        # half = 2·sqrt(0.046875 + 0.0625) / 2 = sqrt(0.109375): width 0.66 vs 0.017 above.
        pytest.param(1, 4, 0.375 - math.sqrt(0.109375), 0.375 + math.sqrt(0.109375), id="small-n"),
    ],
)
def test_wilson_interval_closed_forms(successes, trials, low, high):
    result = wilson_interval(successes, trials, Z2)
    assert result is not None
    assert result[0] == pytest.approx(low, abs=1e-12)
    assert result[1] == pytest.approx(high, abs=1e-12)


def test_wilson_interval_at_95_percent_matches_the_published_value():
    # Newcombe (1998), table I, 81/263 at 95 %: 0.2553 to 0.3662 (four decimals).
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    ("successes", "trials"),
    [
        pytest.param(0, 0, id="zero-denominator"),  # 0/0 is no rate at all
        pytest.param(3, -1, id="negative-denominator"),
        pytest.param(math.nan, 10, id="nan-numerator"),
    ],
)
def test_wilson_interval_without_a_rate_is_none(successes, trials):
    assert wilson_interval(successes, trials) is None


def test_wilson_interval_rejects_more_successes_than_trials():
    # 11 purchases in 10 sessions means the measures are mis-mapped: say so, don't clip.
    with pytest.raises(ValueError, match="11 successes out of 10 trials"):
        wilson_interval(11, 10)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_confidence_must_lie_strictly_between_0_and_1(confidence):
    with pytest.raises(ValueError, match="confidence"):
        z_score(confidence)
