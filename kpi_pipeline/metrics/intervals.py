"""Confidence intervals for KPI values computed from counts.

A conversion rate of 2 % on 300 sessions and on 300,000 sessions are different claims: the
Wilson score interval says how far the true rate may lie from the one observed.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_score(confidence: float) -> float:
    """Two-sided standard normal quantile: 1.959963984540054 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Wilson score interval of a proportion `successes / trials`, clipped to [0, 1].

    Unlike the normal ("Wald") interval it stays inside [0, 1] and keeps a sensible width
    when the rate is 0 or 1 or the sample is small. None when there are no trials.
    """
    if trials <= 0 or math.isnan(trials) or math.isnan(successes):
        return None
    if successes < 0 or successes > trials:
        raise ValueError(f"{successes} successes out of {trials} trials is not a proportion")
    z = z_score(confidence)
    p = successes / trials
    z2_n = z * z / trials
    centre = (p + z2_n / 2.0) / (1.0 + z2_n)
    half = z * math.sqrt(p * (1.0 - p) / trials + z2_n / (4.0 * trials)) / (1.0 + z2_n)
    return max(0.0, centre - half), min(1.0, centre + half)
