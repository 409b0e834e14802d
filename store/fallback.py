"""The store's side of the degraded fallback: which active jobs still have chunks to score."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.jobs import pending_chunks
from store.tables import Job


def stranded_jobs(session: Session, model: str, older_than: datetime, limit: int = 100) -> dict[str, list[int]]:
    """Active jobs for `model` created before `older_than` -> their pending chunk indices."""
    found = pending_chunks(session, Job.model == model, Job.created_at < older_than, limit=limit)
    return {job_id: chunks for job_id, (_queue, chunks) in found.items()}
