"""The worker's side of the store: claim a chunk, write its scores exactly once, finish the job.

Every write is conditional (`WHERE status = 'pending'`, `ON CONFLICT DO NOTHING`), so a chunk
delivered twice, or two workers racing on one chunk, leave one set of scores. The set-based
statements live in store/chunk_batch.py, which also claims and saves many chunks in one
transaction; these are the one-chunk forms.
"""

from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.chunk_batch import ChunkSave, ChunkWork, ConfidenceRule, claim_chunks, fail_chunk, flag_cases, save_chunks
from store.packed_scores import ScoreMeta
from store.tables import JobChunk

__all__ = ["ChunkWork", "ConfidenceRule", "ScoreMeta", "claim_chunk", "fail_job", "flag_cases", "record_error",
           "save_scores"]


def claim_chunk(session: Session, job_id: str, chunk_idx: int, max_attempts: int) -> Optional[ChunkWork]:
    """Count a delivery and return the work, or None when there is nothing (left) to do.

    A chunk delivered more than `max_attempts` times (a worker died on it each time) fails its job.
    """
    return claim_chunks(session, [(job_id, chunk_idx)], max_attempts)[0]


def record_error(session: Session, job_id: str, chunk_idx: int, error: str) -> None:
    """Remember why an attempt failed, for the final error message."""
    session.execute(
        update(JobChunk).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx).values(error=error[:2000])
    )


def fail_job(session: Session, job_id: str, chunk_idx: int, error: str) -> None:
    chunk_id = session.scalar(select(JobChunk.id).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx))
    fail_chunk(session, job_id, chunk_id, error)


def save_scores(
    session: Session, work: ChunkWork, scores: Sequence[float], meta: ScoreMeta, rule: ConfidenceRule
) -> bool:
    """Write a chunk's scores once; True when this call finished the job."""
    return save_chunks(session, [ChunkSave(work, scores, meta)], rule)[0]
