"""Webhook delivery state of finished jobs: what to deliver, and the outcome of each attempt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.jobs import ACTIVE
from store.tables import Job, utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class CallbackTarget:
    job_id: str
    url: str
    attempts: int
    status: str
    created_at: datetime
    finished_at: Optional[datetime]
    error: Optional[str]
    owner: Optional[str] = None  # the tenant, whose own secret signs the delivery


def callback_target(session: Session, job_id: str) -> Optional[CallbackTarget]:
    """The finished job's pending webhook, or None when there is nothing (more) to deliver."""
    job = session.get(Job, job_id)
    if job is None or not job.callback_url or job.callback_status != PENDING or job.status in ACTIVE:
        return None
    return CallbackTarget(job.id, job.callback_url, job.callback_attempts or 0, job.status, job.created_at,
                          job.finished_at, job.error, job.owner)


def record_attempt(session: Session, job_id: str, error: Optional[str], give_up: bool) -> str:
    """Count one delivery attempt; returns the new callback status."""
    status = DELIVERED if error is None else FAILED if give_up else PENDING
    values = dict(callback_attempts=Job.callback_attempts + 1, callback_status=status)
    if error is None:
        values["callback_delivered_at"] = utcnow()  # an earlier attempt's error stays visible
    else:
        values["callback_last_error"] = error[:2000]
    session.execute(update(Job).where(Job.id == job_id, Job.callback_status == PENDING).values(**values))
    return status


def pending_callbacks(session: Session, limit: int = 50) -> list[str]:
    """Finished jobs whose webhook is still owed (the delivering worker died, or the job was cancelled)."""
    return list(session.scalars(
        select(Job.id).where(Job.callback_status == PENDING, Job.status.not_in(ACTIVE))
        .order_by(Job.finished_at).limit(limit)
    ))
