"""The review queue's "most useful first" order: each open case's value and its parts.

value = uncertainty + frequency + disagreement, each in 0..1:

- uncertainty: the larger of "top-1/top-2 margin near zero" (1 at margin 0, 0 at twice
  RERANKQ_LOW_MARGIN) and "top score near the decision threshold" (1 at RERANKQ_LOW_TOP_SCORE,
  0 half a unit away);
- frequency: requests with the same normalized query in the last RERANKQ_REVIEW_FREQUENCY_DAYS,
  on a log scale: 1 request -> 0, RERANKQ_REVIEW_FREQUENCY_SATURATION or more -> 1, so fixing a
  query many people send helps more traffic;
- disagreement: with a shadow model that scored the same request, (1 - Kendall tau) / 2 (the
  largest over shadow models); 0 when no shadow model scored it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional, Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from store.query_keys import query_key
from store.shadow_jobs import COPY_KINDS
from store.tables import CaseRepeat, Job, JobRequest, LowConfidenceCase, ShadowLink, utcnow

VALUE_SORT = "value"
MAX_CANDIDATES = 5000  # open cases valued per page view; the newest ones when there are more


@dataclass(frozen=True)
class ValueRules:
    low_top_score: float = 0.5
    low_margin: float = 0.05
    frequency_days: float = 7.0
    frequency_saturation: int = 100

    @classmethod
    def from_settings(cls, settings) -> "ValueRules":
        return cls(settings.low_top_score, settings.low_margin, settings.review_frequency_days,
                   settings.review_frequency_saturation)


@dataclass(frozen=True)
class CaseValue:
    total: float
    uncertainty: float
    margin: Optional[float]  # top-1 minus top-2 score; None with one document
    top_score: float
    frequency: float
    seen: int  # requests with this normalized query in the window (at least 1: the case's own)
    disagreement: float
    shadow_model: Optional[str]  # the shadow model that disagrees most, when one scored the request


def uncertainty(scores: Sequence[float], rules: ValueRules) -> tuple[float, Optional[float]]:
    """(uncertainty 0..1, margin)."""
    ranked = sorted(scores, reverse=True)
    margin = ranked[0] - ranked[1] if len(ranked) > 1 else None
    scale = 2 * rules.low_margin if rules.low_margin > 0 else 0.1
    near_tie = 0.0 if margin is None else 1.0 - min(margin / scale, 1.0)
    near_threshold = 1.0 - min(abs(ranked[0] - rules.low_top_score) / 0.5, 1.0)
    return max(near_tie, near_threshold), margin


def frequency(seen: int, rules: ValueRules) -> float:
    return min(1.0, math.log(max(seen, 1)) / math.log(rules.frequency_saturation))


def value_of(scores: Sequence[float], seen: int, disagreement: Optional[tuple[float, str]],
             rules: ValueRules) -> CaseValue:
    u, margin = uncertainty(scores, rules)
    f = frequency(seen, rules)
    d, shadow = disagreement if disagreement else (0.0, None)
    return CaseValue(total=round(u + f + d, 6), uncertainty=round(u, 6), margin=margin, top_score=max(scores),
                     frequency=round(f, 6), seen=max(seen, 1), disagreement=round(d, 6), shadow_model=shadow)


def seen_counts(session: Session, keys: set[str], days: float) -> dict[str, int]:
    """Client requests (not shadow or rescore copies) per normalized-query key in the last `days`."""
    if not keys:
        return {}
    since = utcnow() - timedelta(days=days)
    rows = session.execute(
        select(JobRequest.query_key, func.count()).join(Job, Job.id == JobRequest.job_id)
        .where(JobRequest.query_key.in_(keys), Job.created_at >= since, Job.kind.not_in(COPY_KINDS))
        .group_by(JobRequest.query_key))
    return {key: n for key, n in rows if key is not None}  # (IN never matches a NULL key: none are dropped)


def shadow_disagreement(session: Session, cases: Sequence[LowConfidenceCase]) -> dict[int, tuple[float, str]]:
    """Per case: the largest disagreement of a shadow model that scored its request (or one of its
    identical repeats), and that model."""
    from core.model_comparison import disagreement
    from store.model_compare import PairedRequest, Scoring, scoring_of, stored_requests

    keys = {(c.job_id, c.request_idx): c for c in cases}
    if not keys:
        return {}
    by_id = {c.id: c for c in cases}
    for case_id, job_id, request_idx in session.execute(
            select(CaseRepeat.case_id, CaseRepeat.job_id, CaseRepeat.request_idx)
            .where(CaseRepeat.case_id.in_(list(by_id)))):
        keys[(job_id, request_idx)] = by_id[case_id]
    links = session.execute(
        select(ShadowLink.source_job_id, ShadowLink.source_request_idx, ShadowLink.job_id, ShadowLink.request_idx,
               Job.model)
        .join(Job, Job.id == ShadowLink.job_id)
        .where(tuple_(ShadowLink.source_job_id, ShadowLink.source_request_idx).in_(list(keys)),
               Job.status == "succeeded")).all()
    stored = stored_requests(session, {(c_job, c_idx) for _s_job, _s_idx, c_job, c_idx, _model in links})
    found: dict[int, tuple[float, str]] = {}
    for s_job, s_idx, c_job, c_idx, c_model in links:
        case = keys[(s_job, s_idx)]
        shadow = scoring_of((c_job, c_idx), stored.get((c_job, c_idx), []), c_model, None, None)
        if shadow is None or len(shadow.scores) != len(case.scores):
            continue
        pair = PairedRequest(key=(s_job, s_idx), query=case.query, created_at=case.created_at,
                             baseline=Scoring(case.job_id, case.request_idx, case.model, case.model_revision,
                                              list(case.scores), None),
                             candidate=shadow)
        d = disagreement(pair)
        if case.id not in found or d > found[case.id][0]:
            found[case.id] = (d, shadow.model)
    return found


def case_values(session: Session, cases: Sequence[LowConfidenceCase], rules: ValueRules) -> dict[int, CaseValue]:
    keys = {c.id: query_key(c.query) for c in cases}
    seen = seen_counts(session, set(keys.values()), rules.frequency_days)
    shadows = shadow_disagreement(session, cases)
    return {c.id: value_of(c.scores, seen.get(keys[c.id], 1), shadows.get(c.id), rules) for c in cases}


def by_value(cases: Sequence[LowConfidenceCase], values: dict[int, CaseValue]) -> list[LowConfidenceCase]:
    """Most useful first; equal values newest first."""
    return sorted(cases, key=lambda c: (-values[c.id].total, -c.id))
