"""The Models page's time series and worst cases, from paired requests (store/model_compare.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional, Sequence

from core.model_comparison import disagreement, ndcg_per_request, qid
from core.ranking_metrics import kendall_tau, mean, top1


@dataclass(frozen=True)
class Timeline:
    days: list[datetime]
    agreement: list[Optional[float]]  # top-1 agreement per day
    tau: list[Optional[float]]  # mean Kendall tau per day
    ndcg: dict[str, list[Optional[float]]]  # "side label @ revision" -> mean nDCG@10 per day (reviewed requests)


def _day(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)


def timeline(pairs: Sequence, baseline: str, candidate: str, short=lambda name: name) -> Timeline:
    """`short` shortens model names for the chart's legend."""
    days = sorted({_day(p.created_at) for p in pairs})
    index = {day: i for i, day in enumerate(days)}
    agree: list[list[float]] = [[] for _ in days]
    taus: list[list[float]] = [[] for _ in days]
    for p in pairs:
        i = index[_day(p.created_at)]
        agree[i].append(float(top1(p.baseline.scores) == top1(p.candidate.scores)))
        tau = kendall_tau(p.baseline.scores, p.candidate.scores)
        if tau is not None:
            taus[i].append(tau)
    ndcg: dict[str, list[list[float]]] = {}
    for side, name in (("baseline", baseline), ("candidate", candidate)):
        per_query = ndcg_per_request(pairs, side)
        for p in pairs:
            if qid(p) in per_query:
                label = f"{short(name)} @ {getattr(p, side).revision[:12]}"
                ndcg.setdefault(label, [[] for _ in days])[index[_day(p.created_at)]].append(per_query[qid(p)])
    return Timeline(days, [mean(a) for a in agree], [mean(t) for t in taus],
                    {label: [mean(v) for v in values] for label, values in ndcg.items()})


def most_disagreeing(pairs: Sequence, limit: int = 10) -> list[tuple[float, object]]:
    """(disagreement, pair), largest first; ties newest first."""
    scored = [(disagreement(p), p) for p in pairs]
    scored.sort(key=lambda item: (-item[0], -item[1].created_at.timestamp()))
    return [item for item in scored[:limit] if item[0] > 0]
