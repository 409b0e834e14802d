"""Templates (autoescaped), their filters, and the page/redirect/error helpers every page uses."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from api.dashboard.session import Viewer, attach, signer
from core.review_schemas import GRADE_NAMES

HERE = Path(__file__).parent
REASON_LABELS = {"low_top_score": "Low top score", "small_margin": "Small margin", "flat_scores": "Flat scores",
                 "calibration_sample": "Calibration sample"}


def ago(moment: Optional[datetime], now: Optional[datetime] = None) -> str:
    """'3 min ago', '5 h ago', '2 d ago': how long ago, coarse enough to read at a glance."""
    if moment is None:
        return ""
    seconds = ((now or datetime.now(timezone.utc)) - moment).total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def when(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def percent(value: float) -> float:
    """A 0..1 score as a bar width in percent, clipped."""
    return round(max(0.0, min(1.0, value)) * 100, 1)


def short_model(name: str) -> str:
    """The last path part of a model id or directory, which is what people recognise."""
    return name.rstrip("/").rsplit("/", 1)[-1] or name


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(ago=ago, when=when, seconds=seconds, short_model=short_model, pct=percent,
                       reason=lambda r: REASON_LABELS.get(r, r.replace("_", " ").capitalize()))
    env.globals.update(GRADE_NAMES=GRADE_NAMES, REASON_LABELS=REASON_LABELS, urlencode=urlencode)
    return env


templates = Jinja2Templates(env=_environment())


def page(request: Request, viewer: Viewer, name: str, status_code: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, {"viewer": viewer, **context}, status_code=status_code)
    return attach(response, request, viewer.session)


def redirect(request: Request, url: str, viewer: Optional[Viewer] = None) -> Response:
    """303 See Other, so a refreshed page never re-posts a form."""
    response = RedirectResponse(url, status_code=303)
    return attach(response, request, viewer.session) if viewer else response


class DashboardError(Exception):
    """A problem shown as a page (not JSON): not found, forbidden, bad form token."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def error_page(request: Request, viewer: Viewer, error: DashboardError) -> Response:
    return page(request, viewer, "error.html", status_code=error.status, title=error.title, message=error.message)


def check_csrf(request: Request, viewer: Viewer, token: str | UploadFile | None) -> None:
    """Every dashboard POST proves it came from our own page: 403 without the session's token."""
    if not signer(request).csrf_ok(viewer.session, token if isinstance(token, str) else None):
        raise DashboardError(403, "Form expired", "csrf_token: the form's security token is missing or does not "
                             "match your session. Go back, reload the page and try again.")
