"""What the sweeps re-publish, read in bounded pages: never every pending chunk at once.

A sweep takes at most JOBS_PER_SWEEP jobs (oldest first) per round, and reads each job's pending
chunks CHUNKS_PER_PAGE at a time (keyset on chunk_idx), each page in its own short transaction,
publishing one page before reading the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator, Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from store.db import session_scope
from rerankq.schemas import JobStatus
from store.jobs import ACTIVE
from store.tables import Job, JobChunk

JOBS_PER_SWEEP = 100
CHUNKS_PER_PAGE = 1000


def pending_jobs(session: Session, *conditions, limit: int = 0) -> dict[str, str]:
    """Active jobs matching `conditions` that still have a pending chunk, oldest first, at most
    `limit` (default JOBS_PER_SWEEP) -> their queue."""
    has_pending = exists().where(JobChunk.job_id == Job.id, JobChunk.status == "pending")
    rows = session.execute(select(Job.id, Job.queue).where(Job.status.in_(ACTIVE), has_pending, *conditions)
                           .order_by(Job.created_at, Job.id).limit(limit or JOBS_PER_SWEEP))
    return {job_id: queue for job_id, queue in rows}


def unpublished_jobs(session: Session, created_before: datetime) -> dict[str, str]:
    """Jobs accepted before `created_before` but never handed to the broker (the API died or the
    publish failed) -> their queue."""
    return pending_jobs(session, Job.status == JobStatus.queued.value, Job.published_at.is_(None),
                        Job.created_at < created_before)


def published_pending_jobs(session: Session, queues: Sequence[str], published_before: datetime) -> dict[str, str]:
    """Active jobs on `queues` published before `published_before` with chunks pending -> their queue."""
    return pending_jobs(session, Job.queue.in_(list(queues)), Job.published_at < published_before)


def pending_chunk_page(session: Session, job_id: str, after: int, limit: int) -> list[int]:
    """The job's next `limit` pending chunk indices above `after`."""
    return list(session.scalars(
        select(JobChunk.chunk_idx).where(JobChunk.job_id == job_id, JobChunk.status == "pending",
                                         JobChunk.chunk_idx > after)
        .order_by(JobChunk.chunk_idx).limit(limit)))


def iter_pending_chunks(database_url: str, job_id: str, page: int = 0) -> Iterator[list[int]]:
    """The job's pending chunk indices, a page (default CHUNKS_PER_PAGE) per transaction."""
    page = page or CHUNKS_PER_PAGE
    after = -1
    while True:
        with session_scope(database_url) as session:
            chunks = pending_chunk_page(session, job_id, after, page)
        if chunks:
            yield chunks
        if len(chunks) < page:
            return
        after = chunks[-1]
