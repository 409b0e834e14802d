"""The API's side of the store: create jobs, read them back, cancel them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Sequence, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.orm import Session

from rerankq.schemas import (
    ACTIVE_STATUSES,
    CallbackView,
    DocumentObject,
    JobStatus,
    JobView,
    Progress,
    RerankMeta,
    RerankRequest,
    RerankResponse,
    RerankResult,
    ResultsPage,
)
from store.packed_scores import StoredScore, scored_pairs, scores_by_request
from store.query_keys import query_key
from store.tables import JOB_CHUNKS, JOB_REQUESTS, JOBS, Job, JobRequest, utcnow

ACTIVE = ACTIVE_STATUSES


@dataclass(frozen=True)
class ChunkPlan:
    chunk_idx: int
    request_idx: int
    doc_start: int
    doc_end: int


def plan_chunks(requests: Sequence[RerankRequest], chunk_pairs: int) -> list[ChunkPlan]:
    """Split each request's documents into ranges of at most `chunk_pairs` pairs."""
    plans: list[ChunkPlan] = []
    for request_idx, request in enumerate(requests):
        n_docs = len(request.documents)
        for start in range(0, n_docs, chunk_pairs):
            plans.append(ChunkPlan(len(plans), request_idx, start, min(start + chunk_pairs, n_docs)))
    return plans


@dataclass(frozen=True)
class NewJob:
    """A job as the API accepted it, before its rows exist."""

    job_id: str
    requests: Sequence[RerankRequest]
    model: str
    queue: str
    chunk_pairs: int
    kind: str = "async"
    owner: Optional[str] = None
    idempotency_key: Optional[str] = None
    callback_url: Optional[str] = None
    request_hash: Optional[str] = None

    @cached_property
    def plans(self) -> list[ChunkPlan]:
        """Its chunks, planned once (admission counts them, insert_jobs writes them)."""
        return plan_chunks(self.requests, self.chunk_pairs)


def insert_jobs(session: Session, jobs: Sequence[NewJob]) -> list[list[ChunkPlan]]:
    """Write the jobs, their requests and chunk rows (committed by the caller) with one executemany
    INSERT per table, whatever the number of jobs: what an API process's group commit runs for
    every submit that arrived together. Returns each job's chunk plan."""
    now = utcnow()
    plans = [job.plans for job in jobs]
    session.execute(insert(JOBS), [_job_row(job, job_plans, now) for job, job_plans in zip(jobs, plans)])
    session.execute(insert(JOB_REQUESTS), [
        {"job_id": job.job_id, "request_idx": i, "query": r.query, "instruction": r.instruction,
         "documents": r.document_texts(), "top_n": r.top_n, "return_documents": r.return_documents,
         "max_tokens_per_doc": r.max_tokens_per_doc, "text_hashed": False, "query_key": query_key(r.query)}
        for job in jobs for i, r in enumerate(job.requests)])
    session.execute(insert(JOB_CHUNKS), [
        {"job_id": job.job_id, "chunk_idx": p.chunk_idx, "request_idx": p.request_idx, "doc_start": p.doc_start,
         "doc_end": p.doc_end, "status": "pending", "attempts": 0}
        for job, job_plans in zip(jobs, plans) for p in job_plans])
    return plans


def _job_row(job: NewJob, plans: Sequence[ChunkPlan], now) -> dict:
    return {"id": job.job_id, "status": JobStatus.queued.value, "model": job.model, "queue": job.queue,
            "kind": job.kind, "n_requests": len(job.requests), "n_chunks": len(plans),
            "n_pairs": sum(len(r.documents) for r in job.requests), "owner": job.owner,
            "idempotency_key": job.idempotency_key, "request_hash": job.request_hash,
            "callback_url": job.callback_url, "callback_status": "pending" if job.callback_url else None,
            "callback_attempts": 0, "created_at": now}


def create_job(
    session: Session,
    *,
    job_id: str,
    requests: Sequence[RerankRequest],
    model: str,
    queue: str,
    chunk_pairs: int,
    kind: str = "async",
    owner: Optional[str] = None,
    idempotency_key: Optional[str] = None,
    callback_url: Optional[str] = None,
) -> tuple[Job, list[ChunkPlan]]:
    """One job's rows (committed by the caller), and the job read back."""
    [plans] = insert_jobs(session, [NewJob(job_id, requests, model, queue, chunk_pairs, kind, owner,
                                           idempotency_key, callback_url)])
    job = session.get(Job, job_id)
    assert job is not None, "just inserted in this transaction"
    return job, plans


def find_by_idempotency_key(session: Session, owner: Optional[str], key: str) -> Optional[Job]:
    query = select(Job).where(Job.idempotency_key == key)
    query = query.where(Job.owner.is_(None) if owner is None else Job.owner == owner)
    return session.scalars(query).first()


def mark_published(session: Session, job_id: str) -> None:
    mark_all_published(session, [job_id])


def mark_all_published(session: Session, job_ids: Sequence[str]) -> None:
    """Record that the jobs' messages are on the broker, so the sweeper leaves them alone."""
    session.execute(update(Job).where(Job.id.in_(list(job_ids)), Job.published_at.is_(None))
                    .values(published_at=utcnow()))


def get_job(session: Session, job_id: str, owner: Optional[str] = None) -> Optional[Job]:
    """The job, or None when it does not exist or belongs to another owner."""
    job = session.get(Job, job_id)
    if job is None or (owner is not None and job.owner != owner):
        return None
    return job


def cancel_job(session: Session, job_id: str) -> bool:
    """Cancel a job that has not finished; False when it already had."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.cancelled.value, finished_at=utcnow(), error="cancelled by the client")
    )
    return cast(CursorResult, result).rowcount == 1  # an UPDATE's result


def job_view(session: Session, job: Job, offset: int = 0, limit: Optional[int] = None) -> JobView:
    """The job's status and, once succeeded, the results of requests offset..offset+limit-1 (all
    from `offset` when limit is None), with the page they form."""
    status = JobStatus(job.status)
    if status is JobStatus.succeeded:
        done = job.n_pairs  # every pair has its score (that is what succeeded means)
    else:
        done = scored_pairs(session, job.id)
    results = request_results(session, job, offset, limit) if status is JobStatus.succeeded else None
    return JobView(
        id=job.id,
        status=status,
        progress=Progress(done=done, total=job.n_pairs),
        created_at=job.created_at,
        finished_at=job.finished_at,
        results=results,
        page=results_page(job, offset, limit) if results is not None else None,
        error=job.error if status in (JobStatus.failed, JobStatus.cancelled) else None,
        callback=callback_view(job),
    )


def callback_view(job: Job) -> Optional[CallbackView]:
    if not job.callback_url:
        return None
    return CallbackView(url=job.callback_url, status=job.callback_status or "pending",
                        attempts=job.callback_attempts or 0, last_error=job.callback_last_error,
                        delivered_at=job.callback_delivered_at)


def results_page(job: Job, offset: int, limit: Optional[int]) -> ResultsPage:
    size = job.n_requests - offset if limit is None else limit
    following = offset + size
    more = following < job.n_requests and size > 0
    return ResultsPage(offset=offset, limit=max(size, 0), total=job.n_requests,
                       next_offset=following if more else None,
                       next=f"/v1/jobs/{job.id}?offset={following}&limit={size}" if more else None)


def request_results(session: Session, job: Job, offset: int = 0,
                    limit: Optional[int] = None) -> list[RerankResponse]:
    """One Cohere-shaped response per request, best score first, for requests offset..offset+limit-1
    (every request from `offset` when limit is None): only their rows and their chunks' scores are read."""
    end = job.n_requests if limit is None else offset + limit
    requests = session.scalars(select(JobRequest).where(JobRequest.job_id == job.id, JobRequest.request_idx >= offset,
                                                        JobRequest.request_idx < end)
                               .order_by(JobRequest.request_idx))
    ranged = offset > 0 or end < job.n_requests
    scores = scores_by_request(session, job.id, offset, end) if ranged else scores_by_request(session, job.id)
    return [_response(job, request, scores.get(request.request_idx, [])) for request in requests]


def _response(job: Job, request: JobRequest, scores: list[StoredScore]) -> RerankResponse:
    ranked = sorted(scores, key=lambda s: (-s.score, s.doc_index))
    if request.top_n is not None:
        ranked = ranked[: request.top_n]
    results = [
        RerankResult(
            index=s.doc_index,
            relevance_score=s.score,
            document=DocumentObject(text=request.documents[s.doc_index])
            if request.return_documents and not request.text_hashed else None,
            degraded=True if s.degraded else None,
        )
        for s in ranked
    ]
    # A degraded (fallback) score anywhere marks the whole ranking and names the fallback model.
    first = next((s for s in scores if s.degraded), scores[0]) if scores else None
    meta = RerankMeta(
        model=first.model if first else job.model,
        model_revision=first.model_revision if first else "",
        score_type=first.score_type if first else "",
        instruction=first.instruction if first else request.instruction,
        degraded=any(s.degraded for s in scores),
        billed_units={"search_units": 1, "documents": len(request.documents)},
    )
    suffix = f":{request.request_idx}" if job.n_requests > 1 else ""
    return RerankResponse(id=f"{job.id}{suffix}", results=results, meta=meta)
