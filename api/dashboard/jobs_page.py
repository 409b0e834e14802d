"""Jobs: find one by id, see its status, progress, requests and every document ranked."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request

from api.dashboard.job_pages import job_page, reloads
from api.dashboard.render import DashboardError, page, redirect
from api.dashboard.scopes import READ_JOBS, require_scope
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from store.db import session_scope
from store.job_details import job_detail, recent_jobs
from store.jobs import get_job

router = APIRouter()


@router.get("/dashboard/jobs", include_in_schema=False)
def jobs(request: Request, viewer: ReviewerDep, state: StateDep):
    require_scope(viewer, READ_JOBS, "the jobs page")
    wanted = (request.query_params.get("id") or "").strip()
    if wanted:
        return redirect(request, f"/dashboard/jobs/{quote(wanted, safe='')}", viewer)
    with session_scope(state.settings.database_url) as session:
        rows = recent_jobs(session, viewer.principal.owner_filter)
    return page(request, viewer, "jobs.html", jobs=rows)


@router.get("/dashboard/jobs/{job_id}", include_in_schema=False)
def job(job_id: str, request: Request, viewer: ReviewerDep, state: StateDep):
    require_scope(viewer, READ_JOBS, "a job's results")
    wanted = request.query_params.get("offset", "0")
    offset = int(wanted) if wanted.isdigit() else 0
    with session_scope(state.settings.database_url) as session:
        found = get_job(session, job_id, viewer.principal.owner_filter)
        detail = shown = None
        if found is not None:
            shown = job_page(found.n_requests, found.n_pairs, offset)
            detail = job_detail(session, job_id, viewer.principal.owner_filter, max_requests=shown.size,
                                offset=shown.offset)
    if detail is None:
        raise DashboardError(404, "Job not found", f"There is no job '{job_id}' (or it belongs to another tenant).")
    return page(request, viewer, "job.html", detail=detail, shown=shown,
                refresh=reloads(detail.job.n_pairs, detail.view.status.finished))
