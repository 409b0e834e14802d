"""Two models on the same requests: which requests both scored, with their scores and labels.

A request is scored by its own job's model, and by every model a shadow or rescore job copied it
for (store/shadow_jobs.py). Scores are read with store/packed_scores.scores_by_request, for only
the requests a job contributes (their chunks alone are unpacked). A model may be named
`name@revision` to take only that revision's scores. Degraded (fallback) scores are another
model's and never count as the job's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.review_schemas import Decision
from store.label_export import document_labels
from store.packed_scores import StoredScore, scores_by_request
from store.tables import CaseRepeat, Job, JobRequest, LowConfidenceCase, Review, ShadowLink

Key = tuple[str, int]  # a request: (job id, request index)


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


def stored_requests(session: Session, keys: set[Key]) -> dict[Key, list[StoredScore]]:
    """The stored scores of each request in `keys`, in document order: one ranged read per job."""
    wanted: dict[str, set[int]] = {}
    for job_id, request_idx in keys:
        wanted.setdefault(job_id, set()).add(request_idx)
    found: dict[Key, list[StoredScore]] = {}
    for job_id, indices in wanted.items():
        for request_idx, scores in scores_by_request(session, job_id, min(indices), max(indices) + 1).items():
            if request_idx in indices:
                found[(job_id, request_idx)] = scores
    return found


def scoring_of(key: Key, stored: list[StoredScore], model: str, revision: Optional[str],
               job: Optional[Job]) -> Optional[Scoring]:
    """`model`'s complete, non-degraded scores of one request (of `revision` when given), else None."""
    if not stored or [s.doc_index for s in stored] != list(range(len(stored))):
        return None
    meta = stored[0].meta
    if any(s.meta != meta for s in stored) or meta.degraded or meta.model != model:
        return None
    if revision is not None and meta.model_revision != revision:
        return None
    latency = (job.finished_at - job.created_at).total_seconds() if job is not None and job.finished_at else None
    return Scoring(key[0], key[1], meta.model, meta.model_revision, [s.score for s in stored], latency)


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
        if s_job not in source_jobs:
            continue
        entry = where.setdefault((s_job, s_idx), {})
        source = source_jobs[s_job]
        if source.status == "succeeded" and source.model in names:
            entry.setdefault(source.model, [(s_job, s_idx)])
        entry.setdefault(c_model, []).append((c_job, c_idx))
    keys = {key for found in where.values() for copies in found.values() for key in copies}
    stored = stored_requests(session, keys)
    jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_({j for j, _ in keys})))}

    def scoring(found: list[Key], name: str, revision: Optional[str]) -> Optional[Scoring]:
        for key in found:
            result = scoring_of(key, stored.get(key, []), name, revision, jobs.get(key[0]))
            if result is not None:
                return result
        return None

    pairs: list[PairedRequest] = []
    for key in sorted(where, key=lambda k: (source_jobs[k[0]].created_at, k)):
        a = scoring(where[key].get(a_name, []), a_name, a_rev)
        b = scoring(where[key].get(b_name, []), b_name, b_rev)
        if a is None or b is None or len(a.scores) != len(b.scores):
            continue
        pairs.append(PairedRequest(key, "", source_jobs[key[0]].created_at, a, b))
    pairs = pairs[-limit:]
    attach_queries(session, pairs)
    attach_labels(session, pairs)
    return pairs


def attach_queries(session: Session, pairs: list[PairedRequest]) -> None:
    """Each original request's query text (one read, without the documents)."""
    keys = [p.key for p in pairs]
    if not keys:
        return
    queries = {(job_id, idx): query for job_id, idx, query in session.execute(
        select(JobRequest.job_id, JobRequest.request_idx, JobRequest.query)
        .where(tuple_(JobRequest.job_id, JobRequest.request_idx).in_(keys)))}
    for pair in pairs:
        pair.query = queries.get(pair.key, "")


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
