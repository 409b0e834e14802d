"""The store's side of the degraded fallback: which active jobs still have chunks to score."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.jobs import ACTIVE
from store.tables import Job, JobChunk


def stranded_jobs(session: Session, model: str, older_than: datetime, limit: int = 100) -> dict[str, list[int]]:
    """Active jobs for `model` created before `older_than` -> their pending chunk indices."""
    rows = session.execute(
        select(JobChunk.job_id, JobChunk.chunk_idx).join(Job, Job.id == JobChunk.job_id)
        .where(Job.model == model, Job.status.in_(ACTIVE), Job.created_at < older_than, JobChunk.status == "pending")
        .order_by(Job.created_at, JobChunk.chunk_idx)
    )
    found: dict[str, list[int]] = {}
    for job_id, chunk_idx in rows:
        if job_id not in found and len(found) >= limit:
            break
        found.setdefault(job_id, []).append(chunk_idx)
    return found
