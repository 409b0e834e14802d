"""The dependencies of the /v1 routes, as in the FastAPI project template: a store session, the
caller's key (api.auth, by scope), and the job or case that key owns (404 otherwise), so that each
route reads as validate → call → answer."""

from __future__ import annotations

from typing import Annotated, Iterator, Optional

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from api.auth import ReviewDep, SubmitDep
from api.errors import ApiError
from api.state import AppState, StateDep
from rerankq.schemas import JobStatus
from store.db import session_scope
from store.jobs import get_job
from store.keys import Principal
from store.retention import expired_message
from store.reviews import get_case
from store.tables import Job, LowConfidenceCase

CaseIdPath = Path(..., ge=1, le=2**31 - 1, description="The case's id.")
JobIdPath = Path(..., description="The job's id.")


def get_session(state: StateDep) -> Iterator[Session]:
    """One store session for the route; scope="function" commits it before the answer is sent, so an
    answer never reports what a failed commit lost."""
    with session_scope(state.settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def stored_job(session: Session, job_id: str, owner: Optional[str] = None,
               retention_days: Optional[float] = None) -> Job:
    """The job (of `owner`'s tenant when given), else 404: someone else's job looks absent. A job whose
    results retention deleted (store/retention.py) is 404 job_expired, naming RERANKQ_RETENTION_DAYS."""
    job = get_job(session, job_id, owner=owner)
    if job is None:
        raise ApiError(404, "not_found", f"job_id: no job '{job_id}'", field="job_id")
    if job.expired_at is not None:
        raise ApiError(404, "job_expired", expired_message(job, retention_days), field="job_id",
                       limit=retention_days or None)
    return job


def owned_job_finished(state: AppState, job_id: str, principal: Principal) -> bool:
    """Whether the job has finished, when the caller's tenant owns it and it has not expired, else
    404. In a short session of its own, for GET /v1/jobs/{id}?wait=: a wait must not hold a pooled
    connection, and the one read is also the wait's status check."""
    with session_scope(state.settings.database_url) as session:
        return JobStatus(stored_job(session, job_id, principal.owner_filter, state.settings.retention_days).status
                         ).finished


def submitted_job(session: SessionDep, state: StateDep, principal: SubmitDep, job_id: str = JobIdPath) -> Job:
    """The job a submit-scoped key's tenant owns (DELETE /v1/jobs/{id}), in the route's own session."""
    return stored_job(session, job_id, principal.owner_filter, state.settings.retention_days)


SubmittedJob = Annotated[Job, Depends(submitted_job)]


def owned_case(session: SessionDep, principal: ReviewDep, case_id: int = CaseIdPath) -> LowConfidenceCase:
    case = get_case(session, case_id, principal.owner_filter)
    if case is None:
        raise ApiError(404, "not_found", f"case_id: no case {case_id}", field="case_id")
    return case


OwnedCase = Annotated[LowConfidenceCase, Depends(owned_case)]
