"""Ranking figures from well-kept libraries, for the service and `rerankq eval` alike: Kendall tau
(scipy) and every IR measure through ir-measures (trec_eval's conventions, pytrec_eval underneath).
`per_query` is the one place the project computes IR measures; nDCG@10 of the model comparison and
the metrics of `rerankq eval` (commands/evaluation/measures.py) both come from it.

Ties: rankings are read as the API ranks them (higher score first, then lower document index).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional, Sequence

NDCG_AT_10 = "nDCG@10"


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


def per_query(measures: Iterable, qrels: Mapping[str, Mapping[str, int]],
              run: Mapping[str, Mapping[str, float]]) -> dict[object, dict[str, float]]:
    """{measure: {query id: value}} for each ir-measures measure (objects or names such as 'nDCG@10'),
    over the queries that are both judged and in the run."""
    import ir_measures

    parsed = [ir_measures.parse_measure(m) if isinstance(m, str) else m for m in measures]
    found: dict[object, dict[str, float]] = {m: {} for m in parsed}
    judged = {q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items() if docs}
    scored = {q: {d: float(s) for d, s in run[q].items()} for q in judged if q in run}
    if not scored:
        return found
    for metric in ir_measures.iter_calc(parsed, {q: judged[q] for q in scored}, scored):
        found[metric.measure][metric.query_id] = float(metric.value)
    return found


def ndcg_at_10(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """nDCG@10 per query (trec_eval's ndcg_cut_10) for queries that have judgments."""
    import ir_measures

    measure = ir_measures.parse_measure(NDCG_AT_10)
    return per_query([measure], qrels, run)[measure]


def mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None
