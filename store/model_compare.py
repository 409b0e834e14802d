"""Two models on the same requests: which requests both scored, with their scores and labels.

A request is scored by its own job's model, and by every model a shadow or rescore job copied it
for (store/shadow_jobs.py). Scores are read through store/job_details.job_detail, so this module
does not depend on how the scores table is laid out. A model may be named `name@revision` to
take only that revision's scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.review_schemas import Decision
from store.job_details import job_detail
from store.label_export import document_labels
from store.tables import CaseRepeat, Job, LowConfidenceCase, Review, ShadowLink

Key = tuple[str, int]  # the original request: (job id, request index)
MAX_REQUESTS_PER_JOB = 100_000


@dataclass(frozen=True)
class Scoring:
    """One model's scores of one request, in document order."""

    job_id: str
    request_idx: int
    model: str
    revision: str
    scores: list[float]
    latency_s: Optional[float]  # the scoring job's created -> finished


@dataclass
class PairedRequest:
    key: Key
    query: str
    created_at: datetime
    baseline: Scoring
    candidate: Scoring
    case_id: Optional[int] = None
    grades: dict[int, int] = field(default_factory=dict)  # reviewers' combined grade per document (reviewed only)


def split_spec(spec: str) -> tuple[str, Optional[str]]:
    """'name@revision' -> (name, revision); a bare name takes every revision."""
    name, sep, revision = spec.rpartition("@")
    return (name, revision or None) if sep and name else (spec, None)


def paired_requests(session: Session, baseline: str, candidate: str, limit: int = 2000,
                    owner: Optional[str] = None) -> list[PairedRequest]:
    """The latest `limit` original requests scored by both, oldest first (only `owner`'s jobs when given)."""
    (a_name, a_rev), (b_name, b_rev) = split_spec(baseline), split_spec(candidate)
    names = {a_name, b_name}
    links = session.execute(
        select(ShadowLink.source_job_id, ShadowLink.source_request_idx, ShadowLink.job_id, ShadowLink.request_idx,
               Job.model).join(Job, Job.id == ShadowLink.job_id)
        .where(Job.model.in_(names), Job.status == "succeeded").order_by(ShadowLink.id.desc()).limit(4 * limit)
    ).all()
    sources = {(s_job, s_idx) for s_job, s_idx, *_ in links}
    source_jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_({j for j, _ in sources})))
                   if owner is None or job.owner == owner}
    # Per original request: model name -> [(job id, request idx)], the newest copy first.
    where: dict[Key, dict[str, list[Key]]] = {}
    for s_job, s_idx, c_job, c_idx, c_model in links:
        entry = where.setdefault((s_job, s_idx), {})
        source = source_jobs.get(s_job)
        if source is not None and source.status == "succeeded" and source.model in names:
            entry.setdefault(source.model, [(s_job, s_idx)])
        entry.setdefault(c_model, []).append((c_job, c_idx))
    details: dict[str, object] = {}

    def scoring(found: list[Key], revision: Optional[str]) -> Optional[Scoring]:
        for job_id, request_idx in found:
            if job_id not in details:
                details[job_id] = job_detail(session, job_id, max_requests=MAX_REQUESTS_PER_JOB)
            detail = details[job_id]
            if detail is None or request_idx >= len(detail.requests):
                continue
            request = detail.requests[request_idx]
            if not request.meta or (revision is not None and request.meta["model_revision"] != revision):
                continue
            by_index = {d.index: d.score for d in request.documents}
            if any(v is None for v in by_index.values()):
                continue
            job = detail.job
            latency = (job.finished_at - job.created_at).total_seconds() if job.finished_at else None
            return Scoring(job_id, request_idx, request.meta["model"], request.meta["model_revision"],
                           [by_index[i] for i in range(len(by_index))], latency)
        return None

    pairs: list[PairedRequest] = []
    known = [key for key in where if key[0] in source_jobs]
    for key in sorted(known, key=lambda k: (source_jobs[k[0]].created_at, k)):
        a = scoring(where[key].get(a_name, []), a_rev)
        b = scoring(where[key].get(b_name, []), b_rev)
        if a is None or b is None or len(a.scores) != len(b.scores):
            continue
        source = details.get(key[0]) or job_detail(session, key[0], max_requests=MAX_REQUESTS_PER_JOB)
        query = source.requests[key[1]].query if source and key[1] < len(source.requests) else ""
        pairs.append(PairedRequest(key, query, source_jobs[key[0]].created_at, a, b))
    pairs = pairs[-limit:]
    attach_labels(session, pairs)
    return pairs


def attach_labels(session: Session, pairs: list[PairedRequest]) -> None:
    """The case each request raised (or repeated), and its reviewers' combined grades."""
    keys = [p.key for p in pairs]
    if not keys:
        return
    case_of: dict[Key, int] = {}
    for case_id, job_id, idx in session.execute(select(LowConfidenceCase.id, LowConfidenceCase.job_id,
                                                       LowConfidenceCase.request_idx)
                                                .where(tuple_(LowConfidenceCase.job_id,
                                                              LowConfidenceCase.request_idx).in_(keys))):
        case_of[(job_id, idx)] = case_id
    for case_id, job_id, idx in session.execute(select(CaseRepeat.case_id, CaseRepeat.job_id, CaseRepeat.request_idx)
                                                .where(tuple_(CaseRepeat.job_id, CaseRepeat.request_idx).in_(keys))):
        case_of.setdefault((job_id, idx), case_id)
    reviews: dict[int, list[Review]] = {}
    for review in session.scalars(select(Review).where(Review.case_id.in_(set(case_of.values())),
                                                       Review.decision == Decision.reviewed.value)):
        reviews.setdefault(review.case_id, []).append(review)
    for pair in pairs:
        pair.case_id = case_of.get(pair.key)
        if pair.case_id in reviews:
            pair.grades = {index: label.grade for index, label in document_labels(reviews[pair.case_id]).items()}
