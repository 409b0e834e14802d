"""What the dashboard's jobs page shows: recent jobs, and one job with every request ranked in full
(all documents, not cut to top_n), with links to the cases it raised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from rerankq.schemas import JobView
from store.jobs import get_job, job_view
from store.reviews import model_order
from store.packed_scores import scores_by_request
from store.tables import Job, JobRequest, LowConfidenceCase


@dataclass(frozen=True)
class RankedDocument:
    index: int
    rank: int
    score: Optional[float]  # None until scored
    text: str


@dataclass(frozen=True)
class RequestDetail:
    request_idx: int
    query: str
    instruction: Optional[str]
    top_n: Optional[int]
    documents: list[RankedDocument]
    case_id: Optional[int]
    meta: dict


@dataclass(frozen=True)
class JobDetail:
    job: Job
    view: JobView
    requests: list[RequestDetail]


def recent_jobs(session: Session, owner: Optional[str] = None, limit: int = 20) -> list[Job]:
    statement = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if owner is not None:
        statement = statement.where(Job.owner == owner)
    return list(session.scalars(statement))


def job_detail(session: Session, job_id: str, owner: Optional[str] = None,
               max_requests: int = 50, offset: int = 0) -> Optional[JobDetail]:
    """The job and its requests offset..offset+max_requests-1 ranked; only their rows are read."""
    job = get_job(session, job_id, owner)
    if job is None:
        return None
    end = offset + max_requests
    scores = scores_by_request(session, job_id, offset, end)
    cases = dict(session.execute(select(LowConfidenceCase.request_idx, LowConfidenceCase.id)
                                 .where(LowConfidenceCase.job_id == job_id, LowConfidenceCase.request_idx >= offset,
                                        LowConfidenceCase.request_idx < end)).all())
    requests = []
    for request in session.scalars(select(JobRequest).where(JobRequest.job_id == job_id,
                                                            JobRequest.request_idx >= offset,
                                                            JobRequest.request_idx < end)
                                   .order_by(JobRequest.request_idx)):
        by_index = {s.doc_index: s for s in scores.get(request.request_idx, [])}
        values = [by_index[i].score if i in by_index else float("-inf") for i in range(len(request.documents))]
        documents = [RankedDocument(i, rank, by_index[i].score if i in by_index else None, request.documents[i])
                     for rank, i in enumerate(model_order(values), start=1)]
        first = next(iter(by_index.values()), None)
        meta = dict(model=first.model, model_revision=first.model_revision, score_type=first.score_type,
                    instruction=first.instruction) if first else {}
        requests.append(RequestDetail(request.request_idx, request.query, request.instruction, request.top_n,
                                      documents, cases.get(request.request_idx), meta))
    return JobDetail(job, job_view(session, job, 0, 0), requests)  # status only: the requests are above
