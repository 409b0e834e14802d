"""The store's side of the degraded fallback: which active jobs still have chunks to score."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.pending_work import pending_jobs
from store.tables import Job


def stranded_jobs(session: Session, model: str, older_than: datetime, limit: int = 0) -> list[str]:
    """Active jobs for `model` created before `older_than` with chunks pending, oldest first, at most
    `limit` (default a sweep's worth; store.pending_work.iter_pending_chunks reads their chunks)."""
    return list(pending_jobs(session, Job.model == model, Job.created_at < older_than, limit=limit))
