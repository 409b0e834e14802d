"""Paired significance over queries: Student's paired t-test (scipy.stats.ttest_rel), per metric."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import ttest_rel


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    metric: str
    delta: float  # mean(b) - mean(a)
    p_value: float


def paired_test(a_name: str, a: dict[str, float], b_name: str, b: dict[str, float], metric: str) -> Comparison:
    """`b` against `a` on the queries both have. Identical per-query values give p = 1 (no evidence of a
    difference), where the t statistic itself is undefined."""
    queries = sorted(set(a) & set(b))
    xs, ys = [a[q] for q in queries], [b[q] for q in queries]
    delta = (sum(ys) - sum(xs)) / len(queries) if queries else 0.0
    if len(queries) < 2 or all(x == y for x, y in zip(xs, ys)):
        return Comparison(a_name, b_name, metric, delta, 1.0)
    p_value = float(ttest_rel(ys, xs).pvalue)
    return Comparison(a_name, b_name, metric, delta, 1.0 if math.isnan(p_value) else p_value)
