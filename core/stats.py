"""The one percentile convention every report uses (dashboard, load test, benchmark)."""

from __future__ import annotations

import math
from typing import Optional, Sequence


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100): the smallest value with at least q% of values at or
    below it, so p99 of a small sample is its largest value, never an interpolation. None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
