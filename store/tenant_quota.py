"""Per-tenant quota: pairs a tenant has queued or being scored, so one tenant cannot fill the whole
queue and get every other tenant a 429.

Checked in the transaction that stores the job, after its rows are written, so the count includes
the job itself; on PostgreSQL a per-tenant advisory lock makes concurrent submits of one tenant
count one after another (on SQLite the job's INSERT already holds the single write lock), so the
quota cannot be overshot by submitting in parallel.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from store.jobs import ACTIVE
from store.tables import Job, JobChunk


def lock_tenant(session: Session, tenant: str) -> None:
    """Serialise this tenant's admissions until the transaction ends (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"rerankq-tenant:{tenant}"})


def tenant_pending_pairs(session: Session, tenant: str) -> int:
    """Pairs of the tenant's active jobs not scored yet: queued, or on a worker right now."""
    return session.scalar(
        select(func.coalesce(func.sum(JobChunk.doc_end - JobChunk.doc_start), 0))
        .join(Job, Job.id == JobChunk.job_id)
        .where(Job.owner == tenant, Job.status.in_(ACTIVE), JobChunk.status == "pending")
    ) or 0
