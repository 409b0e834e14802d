"""The worker's side of the store: claim a chunk, write its scores exactly once, finish the job.

Every write is conditional (`WHERE status = 'pending'`, `ON CONFLICT DO NOTHING`), so a chunk
delivered twice, or two workers racing on one chunk, leave one set of scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rerankq.schemas import JobStatus
from store.jobs import ACTIVE
from store.tables import Job, JobChunk, JobRequest, LowConfidenceCase, Score, utcnow

# (scores of one request, in document order) -> reasons to flag it; empty when confident.
ConfidenceRule = Callable[[Sequence[float]], list[str]]


@dataclass(frozen=True)
class ChunkWork:
    """Everything a worker needs to score one chunk, read in one go."""

    job_id: str
    chunk_idx: int
    attempt: int
    model: str
    query: str
    instruction: Optional[str]
    documents: list[str]
    doc_start: int
    max_tokens_per_doc: Optional[int]
    request_idx: int


@dataclass(frozen=True)
class ScoreMeta:
    model: str
    model_revision: str
    score_type: str
    instruction: Optional[str]
    degraded: bool = False


def claim_chunk(session: Session, job_id: str, chunk_idx: int, max_attempts: int) -> Optional[ChunkWork]:
    """Count a delivery and return the work, or None when there is nothing (left) to do.

    A chunk delivered more than `max_attempts` times (a worker died on it each time) fails its job.
    """
    job = session.get(Job, job_id)
    chunk = session.scalars(
        select(JobChunk).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx)
    ).first()
    if job is None or chunk is None or job.status not in ACTIVE or chunk.status != "pending":
        return None
    session.execute(update(JobChunk).where(JobChunk.id == chunk.id).values(attempts=JobChunk.attempts + 1))
    attempt = session.scalar(select(JobChunk.attempts).where(JobChunk.id == chunk.id))
    if attempt > max_attempts:
        _fail(session, job_id, chunk.id, f"chunk {chunk_idx} was delivered {attempt} times without finishing "
              f"(limit RERANKQ_MAX_ATTEMPTS={max_attempts}); last error: {chunk.error or 'worker lost'}")
        return None
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.running.value, started_at=utcnow())
    )
    request = session.scalars(
        select(JobRequest).where(JobRequest.job_id == job_id, JobRequest.request_idx == chunk.request_idx)
    ).one()
    return ChunkWork(
        job_id=job_id,
        chunk_idx=chunk_idx,
        attempt=attempt,
        model=job.model,
        query=request.query,
        instruction=request.instruction,
        documents=list(request.documents[chunk.doc_start:chunk.doc_end]),
        doc_start=chunk.doc_start,
        max_tokens_per_doc=request.max_tokens_per_doc,
        request_idx=chunk.request_idx,
    )


def record_error(session: Session, job_id: str, chunk_idx: int, error: str) -> None:
    """Remember why an attempt failed, for the final error message."""
    session.execute(
        update(JobChunk).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx).values(error=error[:2000])
    )


def fail_job(session: Session, job_id: str, chunk_idx: int, error: str) -> None:
    chunk_id = session.scalar(select(JobChunk.id).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx))
    _fail(session, job_id, chunk_id, error)


def _fail(session: Session, job_id: str, chunk_id: Optional[int], error: str) -> None:
    if chunk_id is not None:
        session.execute(
            update(JobChunk).where(JobChunk.id == chunk_id, JobChunk.status == "pending")
            .values(status="failed", error=error[:2000], finished_at=utcnow())
        )
    session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.failed.value, error=error[:2000], finished_at=utcnow())
    )


def _insert_ignoring_duplicates(session: Session, table, rows: list[dict]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).on_conflict_do_nothing(), rows)


def save_scores(
    session: Session, work: ChunkWork, scores: Sequence[float], meta: ScoreMeta, rule: ConfidenceRule
) -> bool:
    """Write a chunk's scores once; True when this call finished the job."""
    # Lock the job row first so that two chunks finishing together cannot both miss the end.
    session.execute(select(Job.id).where(Job.id == work.job_id).with_for_update())
    now = utcnow()
    rows = [
        dict(job_id=work.job_id, request_idx=work.request_idx, doc_index=work.doc_start + i, score=float(s),
             model=meta.model, model_revision=meta.model_revision, score_type=meta.score_type,
             instruction=meta.instruction, degraded=meta.degraded, created_at=now)
        for i, s in enumerate(scores)
    ]
    _insert_ignoring_duplicates(session, Score.__table__, rows)
    marked = session.execute(
        update(JobChunk).where(JobChunk.job_id == work.job_id, JobChunk.chunk_idx == work.chunk_idx,
                               JobChunk.status == "pending").values(status="done", finished_at=now)
    )
    if marked.rowcount == 0:
        return False
    remaining = session.scalar(
        select(func.count()).select_from(JobChunk).where(JobChunk.job_id == work.job_id, JobChunk.status != "done")
    )
    if remaining:
        return False
    finished = session.execute(
        update(Job).where(Job.id == work.job_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.succeeded.value, finished_at=now)
    )
    if finished.rowcount == 0:
        return False
    flag_cases(session, work.job_id, rule)
    return True


def flag_cases(session: Session, job_id: str, rule: ConfidenceRule) -> int:
    """Snapshot every request of a finished job that the rule flags; returns how many."""
    scores: dict[int, list[Score]] = {}
    for score in session.scalars(select(Score).where(Score.job_id == job_id).order_by(Score.doc_index)):
        scores.setdefault(score.request_idx, []).append(score)
    rows = []
    for request in session.scalars(select(JobRequest).where(JobRequest.job_id == job_id)):
        request_scores = scores.get(request.request_idx, [])
        values = [s.score for s in request_scores]
        reasons = rule(values) if values else []
        if not reasons:
            continue
        first = request_scores[0]
        rows.append(dict(
            job_id=job_id, request_idx=request.request_idx, reasons=reasons, reason=reasons[0],
            query=request.query, instruction=first.instruction, documents=request.documents, scores=values,
            top_score=max(values), model=first.model, model_revision=first.model_revision,
            score_type=first.score_type, status="open", created_at=utcnow(),
        ))
    if rows:
        _insert_ignoring_duplicates(session, LowConfidenceCase.__table__, rows)
    return len(rows)
