"""How far a recent score distribution moved from a reference one: the population stability index
(PSI) over the reference's quantile bins, and the two-sample Kolmogorov-Smirnov statistic (scipy).

PSI reads as the usual rule of thumb: below 0.1 stable, 0.1-0.2 a moderate shift, above 0.2 a
significant one (the RerankqScoreDrift alert's threshold).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Sequence

PSI_FLOOR = 1e-4  # share given to an empty bin, so one empty bin cannot make the index infinite


def quantile_edges(reference: Sequence[float], bins: int) -> list[float]:
    """Inner bin edges at the reference's quantiles; repeated values collapse (scores often tie at 0 or 1)."""
    ordered = sorted(reference)
    edges = [ordered[min(len(ordered) - 1, (len(ordered) * i) // bins)] for i in range(1, bins)]
    return sorted(set(edges))


def shares(values: Sequence[float], edges: list[float]) -> list[float]:
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_right(edges, value)] += 1
    return [max(c / len(values), PSI_FLOOR) for c in counts]


def psi(reference: Sequence[float], recent: Sequence[float], bins: int = 10) -> float:
    """sum over bins of (recent share - reference share) * ln(recent share / reference share)."""
    if not reference or not recent:
        raise ValueError("PSI needs scores in both windows")
    edges = quantile_edges(reference, bins)
    expected, actual = shares(reference, edges), shares(recent, edges)
    return float(sum((a - e) * math.log(a / e) for a, e in zip(actual, expected)))


def ks(reference: Sequence[float], recent: Sequence[float]) -> float:
    """The largest gap between the two empirical distribution functions (0 same, 1 disjoint)."""
    from scipy.stats import ks_2samp  # imported here: the API loads scipy only when it measures drift

    return float(ks_2samp(reference, recent).statistic)
