"""The figures of GET /v1/models/compare and the dashboard's Models page, from paired requests.

Each figure is over the requests both models scored: top-1 agreement, mean Kendall tau, each
model's nDCG@10 on the reviewed ones (reviewers' combined grades as judgments), each model's
low-confidence rate (the service's own rules, without the random calibration sample) and each
model's p95 latency (its scoring job's created -> finished; nearest rank, core/stats.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from core.ranking_metrics import kendall_tau, mean, ndcg_at_10, top1
from core.stats import percentile


@dataclass(frozen=True)
class ModelFigures:
    model: str
    revisions: list[str]
    ndcg_at_10: Optional[float]
    n_reviewed: int
    low_confidence_rate: Optional[float]
    p95_latency_s: Optional[float]


@dataclass(frozen=True)
class Comparison:
    baseline: ModelFigures
    candidate: ModelFigures
    n_requests: int
    top1_agreement: Optional[float]
    mean_kendall_tau: Optional[float]
    n_tau: int  # requests where tau is defined (two or more documents, neither ranking constant)


def qid(pair) -> str:
    return f"{pair.key[0]}:{pair.key[1]}"


def ndcg_per_request(pairs: Sequence, side: str) -> dict[str, float]:
    """nDCG@10 of one side ('baseline' or 'candidate') on each reviewed request."""
    qrels = {qid(p): {str(i): g for i, g in p.grades.items()} for p in pairs if p.grades}
    run = {qid(p): {str(i): s for i, s in enumerate(getattr(p, side).scores)} for p in pairs if p.grades}
    return ndcg_at_10(qrels, run)


def figures(pairs: Sequence, side: str, spec: str, rules) -> ModelFigures:
    scorings = [getattr(p, side) for p in pairs]
    per_query = ndcg_per_request(pairs, side)
    flagged = [bool(rules.reasons(s.scores)) for s in scorings]
    latencies = [s.latency_s for s in scorings if s.latency_s is not None]
    return ModelFigures(model=spec, revisions=sorted({s.revision for s in scorings}),
                        ndcg_at_10=mean(list(per_query.values())), n_reviewed=len(per_query),
                        low_confidence_rate=mean([float(f) for f in flagged]), p95_latency_s=percentile(latencies, 95))


def compare(pairs: Sequence, baseline: str, candidate: str, rules) -> Comparison:
    """`rules`: a ConfidenceRules with sample_rate 0 (core/confidence_rules.py)."""
    agree = [float(top1(p.baseline.scores) == top1(p.candidate.scores)) for p in pairs if p.baseline.scores]
    taus = [t for t in (kendall_tau(p.baseline.scores, p.candidate.scores) for p in pairs) if t is not None]
    return Comparison(baseline=figures(pairs, "baseline", baseline, rules),
                      candidate=figures(pairs, "candidate", candidate, rules), n_requests=len(pairs),
                      top1_agreement=mean(agree), mean_kendall_tau=mean(taus), n_tau=len(taus))


def disagreement(pair) -> float:
    """0 (same order) .. 1 (reversed): (1 - tau) / 2, or the top-1 verdict where tau is undefined."""
    tau = kendall_tau(pair.baseline.scores, pair.candidate.scores)
    if tau is not None:
        return (1.0 - tau) / 2.0
    return 0.0 if top1(pair.baseline.scores) == top1(pair.candidate.scores) else 1.0
