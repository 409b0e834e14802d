"""POST /v1/rerank: Cohere-compatible and synchronous, riding the same queue as jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.auth import SubmitDep
from api.db_errors import UNAVAILABLE as DATABASE_UNAVAILABLE
from api.state import StateDep
from api.errors import ApiError
from api.limits import check_model, check_request
from api.served_models import accepted_names
from api.deps import stored_job
from api.job_wait import expecting
from api.submit import new_job_id, submit
from core.done_payload import decode, response_from
from rerankq.schemas import DocumentObject, JobAccepted, JobStatus, RerankRequest, RerankResponse
from store.db import session_scope
from store.jobs import job_view

router = APIRouter(tags=["rerank"])

RESPONSES: dict[int | str, dict[str, Any]] = {
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
    job_id = new_job_id()
    with expecting(state, job_id) as expected:  # listening before the job is published: no store check
        await run_in_threadpool(submit, state, [body], kind="sync", owner=principal.tenant, job_id=job_id)
        _done, payload = await expected.wait(settings.sync_timeout_s)
    try:
        answer = response_from(decode(payload), job_id, body)  # the worker's committed scores, when all there
        if answer is not None:  # serialized once here: FastAPI would validate the model again first
            return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")
        view = await run_in_threadpool(_view, state, job_id)
    except DATABASE_UNAVAILABLE:  # the job is stored: the client polls it (a 503 would have it submit again)
        return _accepted(job_id, JobStatus.queued)
    if view.status is JobStatus.succeeded:
        return with_documents(view.results[0], body)
    if view.status is JobStatus.failed:
        raise ApiError(500, "job_failed", f"job {job_id} failed: {view.error}")
    if view.status is JobStatus.cancelled:
        raise ApiError(409, "job_cancelled", f"job {job_id} was cancelled")
    return _accepted(job_id, view.status)


def _accepted(job_id: str, status: JobStatus) -> JSONResponse:
    accepted = JobAccepted(id=job_id, status=status)
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


def with_documents(response: RerankResponse, body: RerankRequest) -> RerankResponse:
    """Documents from the request itself where the store kept only their hashes (RERANKQ_KEEP_DOCUMENT_TEXT)."""
    if body.return_documents and any(r.document is None for r in response.results):
        texts = body.document_texts()
        for result in response.results:
            result.document = DocumentObject(text=texts[result.index])
    return response


def _view(state, job_id: str):
    with session_scope(state.settings.database_url) as session:
        return job_view(session, stored_job(session, job_id))
