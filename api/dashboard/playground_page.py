"""The playground: type a query, an optional instruction and a few documents, and see them ranked.

It goes through the same path as POST /v1/rerank (limits, admission, queue, worker, store), so
what it shows is what clients get, and its results can be flagged for review like any others.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.dashboard.render import check_csrf, page, redirect
from api.dashboard.scopes import READ_JOBS, require_scope
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from api.errors import ApiError
from api.limits import check_request
from api.job_wait import wait_until_done
from api.submit import submit
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.job_details import job_detail

router = APIRouter()
EXAMPLE = dict(query="What is the capital of China?", instruction="",
               documents="The capital of China is Beijing.\nGravity is a force that attracts objects.\n"
                         "Shanghai is the largest city in China.")


def _form(query: str, instruction: str, documents: str) -> dict[str, str]:
    return dict(query=query, instruction=instruction, documents=documents)


@router.get("/dashboard/playground", include_in_schema=False)
def playground(request: Request, viewer: ReviewerDep, state: StateDep):
    job_id = request.query_params.get("job")
    detail = None
    form = EXAMPLE
    if job_id:
        require_scope(viewer, READ_JOBS, "a job's results")
        with session_scope(state.settings.database_url) as session:
            detail = job_detail(session, job_id, viewer.principal.owner_filter, max_requests=1)
        if detail and detail.requests:
            first = detail.requests[0]
            texts = [d.text for d in sorted(first.documents, key=lambda d: d.index)]
            form = _form(first.query, first.instruction or "", "\n".join(texts))
    return page(request, viewer, "playground.html", form=form, detail=detail, error=None,
                refresh=detail is not None and not detail.view.status.finished)


@router.post("/dashboard/playground", include_in_schema=False)
async def run(request: Request, viewer: ReviewerDep, state: StateDep):
    data = await request.form()
    check_csrf(request, viewer, data.get("csrf_token"))
    form = _form(str(data.get("query") or ""), str(data.get("instruction") or ""), str(data.get("documents") or ""))
    documents = [line.strip() for line in form["documents"].splitlines() if line.strip()]
    settings = state.settings
    try:
        if not viewer.can("submit"):
            raise ApiError(403, "forbidden", f"the key '{viewer.principal.name}' lacks the submit scope the "
                                             "playground needs")
        body = RerankRequest(query=form["query"], documents=documents, instruction=form["instruction"].strip() or None)
        check_request(body, settings)
        job_id, _status, _created = await run_in_threadpool(submit, state, [body], kind="sync",
                                                             owner=viewer.principal.tenant)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(p) for p in problem.get("loc", ()))
        message = f"{field}: {problem.get('msg', 'invalid')}".replace("Value error, ", "")
        return page(request, viewer, "playground.html", status_code=422, form=form, detail=None, error=message,
                    refresh=False)
    except ApiError as error:
        return page(request, viewer, "playground.html", status_code=error.status, form=form, detail=None,
                    error=error.message, refresh=False)
    await wait_until_done(state, job_id, settings.sync_timeout_s)
    return redirect(request, f"/dashboard/playground?job={job_id}", viewer)
