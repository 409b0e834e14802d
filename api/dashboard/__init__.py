"""The review dashboard: server-rendered pages on the API's own app, under /dashboard."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from api.dashboard import (case_page, export_page, jobs_page, login_page, models_page, overview_page, playground_page,
                           queue_page)
from api.dashboard.render import DashboardError, error_page, redirect
from api.dashboard.session import ANONYMOUS_TTL_S, LoginRequired, Signer, Viewer, read_session, signer
from core.settings import Settings
from store.keys import Principal

PAGES = (queue_page, case_page, overview_page, models_page, jobs_page, playground_page, login_page, export_page)


# Starlette types exception handlers as taking any Exception; each is registered for its own class.
async def _login_required(request: Request, exc: Exception):
    assert isinstance(exc, LoginRequired)
    return redirect(request, "/dashboard/login?" + urlencode({"next": exc.next_url}))


async def _dashboard_error(request: Request, exc: Exception):
    assert isinstance(exc, DashboardError)
    session = read_session(request)
    nobody = Principal(key_id=None, name="", tenant=None, scopes=frozenset())
    settings: Settings = request.app.state.dashboard_settings
    viewer = Viewer(nobody, session, signer(request).csrf_token(session), settings.auth_enabled)
    return error_page(request, viewer, exc)


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and their error pages to `app`."""
    longest_s = max(settings.dashboard_session_hours * 3600, ANONYMOUS_TTL_S)  # no cookie outlives a login
    app.state.dashboard_signer = Signer(settings.secret_key, max_age_s=longest_s)
    app.state.dashboard_settings = settings
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/dashboard/static", StaticFiles(directory=Path(__file__).with_name("static")), name="dashboard-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(DashboardError, _dashboard_error)
