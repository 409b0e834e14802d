"""The store side of score drift: each model's reference window, and samples of its scores and
low-confidence flags in a time window.

Scores are read through store.job_details.job_detail (the dashboard's reader of a job's full
rankings), never from the scores table directly, so a change in how scores are stored changes one
reader. A window is sampled as its most recent `max_jobs` succeeded jobs, which bounds the cost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rerankq.schemas import JobStatus
from store.job_details import job_detail
from store.shadow_jobs import COPY_KINDS
from store.tables import DriftReference, Job, LowConfidenceCase, utcnow


@dataclass
class WindowSample:
    scores: list[float] = field(default_factory=list)
    requests: int = 0
    flagged: int = 0  # requests that became low-confidence cases
    revisions: Counter = field(default_factory=Counter)

    @property
    def low_confidence_rate(self) -> Optional[float]:
        return self.flagged / self.requests if self.requests else None


def window_sample(session: Session, model: str, start: datetime, end: datetime, revision: Optional[str] = None,
                  max_jobs: int = 200, max_requests_per_job: int = 50) -> WindowSample:
    """Scores and flags of `model`'s succeeded jobs finished in [start, end), newest first; with
    `revision`, only requests that revision scored. Degraded (fallback) rankings are left out: they
    are another model's scores. Shadow and rescore copies (store/shadow_jobs.py) are left out too: they
    are not client traffic (a rescore replays chosen cases) and raise no low-confidence cases."""
    jobs = window_jobs(session, model, start, end, max_jobs)
    sample = WindowSample()
    if not jobs:
        return sample
    flagged = set(session.execute(select(LowConfidenceCase.job_id, LowConfidenceCase.request_idx)
                                  .where(LowConfidenceCase.job_id.in_(jobs))).all())
    for job_id in jobs:
        detail = job_detail(session, job_id, max_requests=max_requests_per_job)
        if detail is None:
            continue
        for request in detail.requests:
            meta = request.meta
            if not meta or meta.get("model") != model or (revision and meta.get("model_revision") != revision):
                continue
            values = [d.score for d in request.documents if d.score is not None]
            if not values:
                continue
            sample.scores.extend(values)
            sample.requests += 1
            sample.flagged += (job_id, request.request_idx) in flagged
            sample.revisions[meta.get("model_revision")] += 1
    return sample


def window_jobs(session: Session, model: str, start: datetime, end: datetime, max_jobs: int) -> list[str]:
    """The jobs a window's sample reads: `model`'s newest `max_jobs` succeeded client jobs (not shadow or
    rescore copies) finished in [start, end) whose results retention has not deleted."""
    return list(session.scalars(
        select(Job.id).where(Job.model == model, Job.status == JobStatus.succeeded.value,
                             Job.finished_at >= start, Job.finished_at < end, Job.expired_at.is_(None),
                             Job.kind.not_in(COPY_KINDS))  # client traffic: shadow and rescore copies raise no cases
        .order_by(Job.finished_at.desc()).limit(max_jobs)))


def reference_job_ids(session: Session, max_jobs: int) -> set[str]:
    """The jobs the models' reference windows sample: a reference window stays fixed while its model
    revision serves (for months), so retention keeps these (store/retention.py) or drift would lose its
    baseline once the window is older than RERANKQ_RETENTION_DAYS."""
    ids: set[str] = set()
    for reference in session.scalars(select(DriftReference)):
        ids.update(window_jobs(session, reference.model, reference.window_start, reference.window_end, max_jobs))
    return ids


def get_reference(session: Session, model: str) -> Optional[DriftReference]:
    return session.get(DriftReference, model)


def set_reference(session: Session, model: str, revision: Optional[str], start: datetime, end: datetime,
                  pinned: bool) -> DriftReference:
    reference = session.get(DriftReference, model)
    if reference is None:
        reference = DriftReference(model=model)
        session.add(reference)
    reference.model_revision, reference.window_start, reference.window_end = revision, start, end
    reference.pinned, reference.created_at = pinned, utcnow()
    session.flush()
    return reference


def reference_for_revision(session: Session, model: str, revision: Optional[str], length: timedelta,
                           now: Optional[datetime] = None) -> DriftReference:
    """The model's reference window; a revision not seen before starts a new one at `now` (the reference
    then fills with that revision's first `length` of traffic). A pinned reference stays until another
    revision starts serving."""
    now = now or utcnow()
    reference = session.get(DriftReference, model)
    if reference is None or (revision is not None and reference.model_revision not in (None, revision)):
        return set_reference(session, model, revision, now, now + length, pinned=False)
    if reference.model_revision is None and revision is not None and not reference.pinned:
        reference.model_revision = revision
    return reference


def pin_reference(session: Session, model: str, length: timedelta, revision: Optional[str] = None,
                  now: Optional[datetime] = None) -> DriftReference:
    """`rerankq drift pin`: the last `length` of the model's traffic becomes its reference (its revision:
    the one that scored most of it, unless given)."""
    now = now or utcnow()
    if revision is None:
        revisions = window_sample(session, model, now - length, now).revisions
        revision = revisions.most_common(1)[0][0] if revisions else None
    return set_reference(session, model, revision, now - length, now, pinned=True)


def models_with_traffic(session: Session, since: datetime) -> list[str]:
    return list(session.scalars(select(Job.model).where(Job.finished_at >= since, Job.kind.not_in(COPY_KINDS))
                                .group_by(Job.model)
                                .order_by(func.count().desc())))
