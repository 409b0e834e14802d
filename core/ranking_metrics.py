"""Ranking comparisons from well-kept libraries: Kendall tau (scipy) and nDCG@10 (pytrec_eval,
trec_eval's own code), plus the two trivial figures around them.

Ties: rankings are read as the API ranks them (higher score first, then lower document index).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence


def top1(scores: Sequence[float]) -> int:
    """The document the API would rank first."""
    return min(range(len(scores)), key=lambda i: (-scores[i], i))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """scipy's tau-b of two score lists over the same documents; None when undefined
    (fewer than two documents, or one list is constant)."""
    from scipy.stats import kendalltau

    if len(a) < 2:
        return None
    tau = kendalltau(a, b).statistic
    return None if tau is None or math.isnan(tau) else float(tau)


def ndcg_at_10(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """nDCG@10 per query (trec_eval's ndcg_cut_10) for queries that have judgments."""
    import pytrec_eval

    judged = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items() if docs}
    scored = {q: {d: float(s) for d, s in run[q].items()} for q in judged if q in run}
    if not scored:
        return {}
    evaluator = pytrec_eval.RelevanceEvaluator({q: judged[q] for q in scored}, {"ndcg_cut.10"})
    return {q: values["ndcg_cut_10"] for q, values in evaluator.evaluate(scored).items()}


def p95(values: Sequence[float]) -> Optional[float]:
    """The 95th percentile, linear between closest ranks (numpy's default)."""
    import numpy

    return float(numpy.percentile(list(values), 95)) if values else None


def mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None
