"""POST /v1/rerank: Cohere-compatible and synchronous, riding the same queue as jobs."""

from __future__ import annotations

import asyncio
import time

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.auth import SubmitDep
from api.deps import StateDep
from api.errors import ApiError
from api.limits import check_model, check_request
from api.served_models import accepted_names
from api.submit import submit
from core.done_payload import decode, response_from
from core.redis_keys import done_key
from core.schemas import JobAccepted, JobStatus, RerankRequest, RerankResponse
from store.db import session_scope
from store.jobs import get_job, job_view

router = APIRouter(tags=["rerank"])

RESPONSES = {
    202: {"model": JobAccepted, "description": "Not finished within RERANKQ_SYNC_TIMEOUT_S; poll /v1/jobs/{id}."},
    422: {"description": "Invalid request or a limit exceeded."},
    429: {"description": "Overloaded; see Retry-After."},
}


@router.post("/v1/rerank", response_model=RerankResponse, responses=RESPONSES, operation_id="rerank",
             response_model_exclude_none=True)
@router.post("/v2/rerank", response_model=RerankResponse, responses=RESPONSES, include_in_schema=False,
             response_model_exclude_none=True)
async def rerank(body: RerankRequest, state: StateDep, principal: SubmitDep):
    """Rank documents by relevance to the query and wait for the answer."""
    settings = state.settings
    check_model(body, await run_in_threadpool(accepted_names, settings, state.redis, [body.model]))
    check_request(body, settings)
    job_id, _status, _created = await run_in_threadpool(submit, state, [body], kind="sync", owner=principal.tenant)
    woke = await wait_until_done(state, job_id, settings.sync_timeout_s)
    answer = response_from(decode(woke), job_id, body)  # the worker's committed scores, when they are all there
    if answer is not None:  # serialized once here: FastAPI would validate the model again first
        return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")
    view = await run_in_threadpool(_view, state, job_id)
    if view.status is JobStatus.succeeded:
        return view.results[0]
    if view.status is JobStatus.failed:
        raise ApiError(500, "job_failed", f"job {job_id} failed: {view.error}")
    if view.status is JobStatus.cancelled:
        raise ApiError(409, "job_cancelled", f"job {job_id} was cancelled")
    accepted = JobAccepted(id=job_id, status=view.status)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


def _view(state, job_id: str):
    with session_scope(state.settings.database_url) as session:
        return job_view(session, get_job(session, job_id))


async def wait_until_done(state, job_id: str, timeout_s: float):
    """Block on the job's done list (a worker pushes to it); fall back to polling the store.
    Returns the message popped (truthy), True when the store says the job finished, or False
    at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining < 0.01:  # BLPOP rounds tiny timeouts to 0, which would block forever
            return False
        try:
            popped = await state.aioredis.blpop([done_key(job_id)], timeout=min(remaining, 5.0))
            if popped:
                return popped[1] or True
        except redis.RedisError:
            await asyncio.sleep(min(0.2, remaining))
        if await run_in_threadpool(_finished, state, job_id):
            return True


def _finished(state, job_id: str) -> bool:
    with session_scope(state.settings.database_url) as session:
        job = get_job(session, job_id)
        return job is not None and JobStatus(job.status).finished
