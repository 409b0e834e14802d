"""RERANKQ_KEEP_DOCUMENT_TEXT=false: once a job has finished, the texts of its requests that were not
flagged are replaced by SHA-256 hashes (as zero-retention rerank services do for customers with data
rules). Flagged requests keep theirs, and cases hold their own copy, because reviewers need the text.
Hashes still let an operator check whether a given text was submitted."""

from __future__ import annotations

import hashlib
from typing import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.tables import Job, JobRequest, LowConfidenceCase, utcnow

PREFIX = "sha256:"


def text_hash(text: str) -> str:
    return PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_job_texts(session: Session, job_ids: Sequence[str]) -> int:
    """Hash the unflagged requests of these finished jobs (once per job); returns requests hashed."""
    jobs = list(session.scalars(select(Job.id).where(Job.id.in_(list(job_ids)), Job.finished_at.is_not(None),
                                                     Job.texts_hashed_at.is_(None))
                              .order_by(Job.id).with_for_update()))  # in id order, as the saves lock jobs
    if not jobs:
        return 0
    flagged = set(session.execute(select(LowConfidenceCase.job_id, LowConfidenceCase.request_idx)
                                  .where(LowConfidenceCase.job_id.in_(jobs))).tuples())
    hashed = 0
    for request in session.scalars(select(JobRequest).where(JobRequest.job_id.in_(jobs))):
        if (request.job_id, request.request_idx) in flagged:
            continue
        request.query = text_hash(request.query)
        request.documents = [text_hash(document) for document in request.documents]
        request.text_hashed = True
        hashed += 1
    session.execute(update(Job).where(Job.id.in_(jobs)).values(texts_hashed_at=utcnow()))
    return hashed


def unhashed_finished_jobs(session: Session, limit: int) -> list[str]:
    """Finished jobs still holding texts (failed or cancelled ones, or ones a worker missed)."""
    return list(session.scalars(select(Job.id).where(Job.texts_hashed_at.is_(None), Job.finished_at.is_not(None),
                                                     Job.expired_at.is_(None))
                                .order_by(Job.finished_at).limit(limit)))
