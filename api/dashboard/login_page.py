"""Log in by pasting an API key with the review (or admin) scope; log out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.auth import lookup_key
from api.dashboard.render import check_csrf, page, redirect
from api.dashboard.session import AnyViewerDep, attach, end_session, new_session
from api.state import StateDep

router = APIRouter()


def safe_next(target: object) -> str:
    """Only ever send people back into the dashboard (no open redirect)."""
    text = target if isinstance(target, str) else ""
    inside = text.startswith("/dashboard") and not text.startswith("//") and "\\" not in text
    return text if inside else "/dashboard/queue"


@router.get("/dashboard/login", include_in_schema=False)
def login_form(request: Request, viewer: AnyViewerDep):
    return page(request, viewer, "login.html", next=safe_next(request.query_params.get("next")), error=None)


@router.post("/dashboard/login", include_in_schema=False)
async def login(request: Request, viewer: AnyViewerDep, state: StateDep):
    form = await request.form()
    check_csrf(request, viewer, form.get("csrf_token"))
    target = safe_next(form.get("next"))
    if not state.settings.auth_enabled:
        return redirect(request, target, viewer)
    token = str(form.get("api_key") or "").strip()
    principal = await run_in_threadpool(lookup_key, state, token) if token else None
    error = None
    if principal is None:
        error = "That key is unknown or revoked. Paste the whole key, starting with rrq_."
    elif not principal.allows("review"):
        error = f"The key '{principal.name}' lacks the review scope; ask for a key with review (or admin)."
    if error:
        return page(request, viewer, "login.html", status_code=401, next=target, error=error)
    # No error: a stored key was found (only the anonymous principal has no key id).
    assert principal is not None and principal.key_id is not None
    session = new_session(principal.key_id, ttl_s=state.settings.dashboard_session_hours * 3600)
    return attach(redirect(request, target), request, session)  # a fresh session id: no fixation


@router.post("/dashboard/logout", include_in_schema=False)
async def logout(request: Request, viewer: AnyViewerDep, state: StateDep):
    form = await request.form()
    check_csrf(request, viewer, form.get("csrf_token"))
    if viewer.logged_in:
        await run_in_threadpool(end_session, state, viewer.session)
    return attach(redirect(request, "/dashboard/login"), request, new_session())
