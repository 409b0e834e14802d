"""Asynchronous jobs: submit many queries at once, poll, cancel."""

from __future__ import annotations

from typing import Annotated, Optional

import redis
from fastapi import APIRouter, Header, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.auth import ReadDep, SubmitDep
from api.callbacks import check_callback_url
from api.deps import SessionDep, SubmittedJob, owned_job_finished, stored_job
from api.job_wait import expecting
from api.state import AppState, StateDep
from api.errors import ApiError
from api.limits import check_model, check_requests
from api.served_models import accepted_names, resolve_model
from api.submit import submit
from core.redis_keys import JOBS_DONE_CHANNEL, cancelled_key
from rerankq.schemas import JobAccepted, JobCreate, JobView
from store.db import session_scope
from store.jobs import cancel_job, job_view

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
MAX_WAIT_S = 60.0
MAX_PAGE = 100  # requests per answer: with 1,000 documents each, a few MB at most
MAX_OFFSET = 2**31 - 1  # request indices are 32-bit integers in the store


@router.post("", status_code=202, response_model=JobAccepted, operation_id="create_job",
             responses={422: {"description": "Invalid request or a limit exceeded."},
                        429: {"description": "Overloaded; see Retry-After."}})
def create(body: JobCreate, state: StateDep, principal: SubmitDep,
           idempotency_key: Annotated[Optional[str], Header(max_length=200)] = None):
    """Queue a job of one or more rerank requests; poll GET /v1/jobs/{id} for results."""
    settings = state.settings
    check_requests(body.requests, settings)
    check_callback_url(body.callback_url, settings, principal.tenant)
    models = {resolve_model(settings, r.model) or settings.served_model for r in body.requests}
    served = accepted_names(settings, state.redis, [r.model for r in body.requests])
    for index, request in enumerate(body.requests):
        check_model(request, served, prefix=f"requests.{index}.")
    if len(models) > 1:
        raise ApiError(422, "mixed_models", "requests: all requests of one job must use the same model",
                       field="requests")
    job_id, status, created = submit(state, body.requests, kind="async", owner=principal.tenant,
                                     idempotency_key=idempotency_key, callback_url=body.callback_url)
    accepted = JobAccepted(id=job_id, status=status)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202 if created else 200,
                        headers={"Location": f"/v1/jobs/{job_id}"})


@router.get("/{job_id}", response_model=JobView, operation_id="get_job",
            responses={404: {"description": "No such job (not_found), or its results were deleted by retention "
                                            "(job_expired)."}})
async def read(job_id: str, state: StateDep, principal: ReadDep,
               wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Long polling: seconds to wait "
                                            "for the job to finish before answering (0: answer at once).")] = 0,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="First request whose results to "
                                                "include.")] = 0,
               limit: Annotated[Optional[int], Query(ge=1, le=MAX_PAGE, description="Requests whose results to "
                                                     "include (default RERANKQ_JOB_RESULTS_PAGE).")] = None):
    """Status, progress and (when succeeded) one ranked result set per request, a page of requests
    at a time: `page.next` names the next one."""
    # Checked here, not as a dependency, so that bad query parameters are named (422) first.
    if wait <= 0:
        await run_in_threadpool(owned_job_finished, state, job_id, principal)
    else:  # woken by the worker's done notice: no polling load, no poll delay
        with expecting(state, job_id) as expected:  # listening before the status is read: no notice is missed
            if not await run_in_threadpool(owned_job_finished, state, job_id, principal):
                await expected.wait(wait)
    return await run_in_threadpool(_page, state, job_id, offset, limit or state.settings.job_results_page)


def _page(state: AppState, job_id: str, offset: int, limit: int) -> JobView:
    with session_scope(state.settings.database_url) as session:
        # expired meanwhile (a retention pass between the owner check and this read): job_expired, not empty
        job = stored_job(session, job_id, retention_days=state.settings.retention_days)
        return job_view(session, job, offset, limit)


@router.delete("/{job_id}", response_model=JobView, operation_id="cancel_job",
               responses={404: {"description": "No such job."}, 409: {"description": "Already finished."}})
def cancel(job: SubmittedJob, session: SessionDep, state: StateDep):
    """Cancel a job that has not finished; chunks already running stop at their next check."""
    job_id = job.id
    if not cancel_job(session, job_id):
        session.refresh(job)
        raise ApiError(409, "already_finished", f"job {job_id} has already finished ({job.status})")
    session.commit()  # stored before the workers are told
    try:
        state.redis.set(cancelled_key(job_id), "1", ex=86400)
        state.redis.publish(JOBS_DONE_CHANNEL, job_id)
    except redis.RedisError:
        pass  # workers also see the cancelled status in the store when they claim
    session.refresh(job)
    return job_view(session, job, 0, state.settings.job_results_page)
