"""Dashboard sessions: a signed cookie naming an API key id, and CSRF tokens derived from it.

The cookie holds `v1.<key id>.<expiry>.<session id>.<HMAC-SHA256>` and never the key's secret;
each request re-reads the key, so revoking it ends the session at once. Every visitor gets a
session (anonymous until login) so that every form, login included, carries a CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Optional

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import AppState, StateDep
from store.dashboard_sessions import revoke_session, session_revoked
from store.db import session_scope
from store.keys import ANONYMOUS, Principal
from store.tables import ApiKey

COOKIE = "rerankq_session"
PATH = "/dashboard"
ANONYMOUS_TTL_S = 3600


@dataclass(frozen=True)
class DashboardSession:
    sid: str
    key_id: str  # "" until someone logs in
    expires: int  # unix seconds
    is_new: bool = False


class Signer:
    """Signs sessions and CSRF tokens with the app's secret (settings.secret_key, or random per process)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode() if secret else secrets.token_bytes(32)

    def _mac(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def dump(self, session: DashboardSession) -> str:
        body = f"v1.{session.key_id or '-'}.{session.expires}.{session.sid}"
        return f"{body}.{self._mac(body)}"

    def load(self, value: Optional[str], now: Optional[float] = None) -> Optional[DashboardSession]:
        """The session, or None when the cookie is missing, forged, malformed or expired."""
        parts = (value or "").split(".")
        if len(parts) != 5 or parts[0] != "v1":
            return None
        body, signature = ".".join(parts[:4]), parts[4]
        if not hmac.compare_digest(self._mac(body), signature) or not parts[2].isdigit():
            return None
        if int(parts[2]) < (now or time.time()):
            return None
        return DashboardSession(sid=parts[3], key_id="" if parts[1] == "-" else parts[1], expires=int(parts[2]))

    def csrf_token(self, session: DashboardSession) -> str:
        return self._mac(f"csrf.{session.sid}")

    def csrf_ok(self, session: DashboardSession, token: Optional[str]) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token)


def new_session(key_id: str = "", ttl_s: float = ANONYMOUS_TTL_S) -> DashboardSession:
    return DashboardSession(sid=secrets.token_urlsafe(16), key_id=key_id, expires=int(time.time() + ttl_s), is_new=True)


class LoginRequired(Exception):
    """Raised by pages when nobody (or a key without the review scope) is logged in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a dashboard page, and the session their forms must prove."""

    principal: Principal
    session: DashboardSession
    csrf: str
    auth_enabled: bool

    @property
    def logged_in(self) -> bool:
        return bool(self.session.key_id)

    def can(self, scope: str) -> bool:
        return self.principal.allows(scope)


def signer(request: Request) -> Signer:
    return request.app.state.dashboard_signer


def read_session(request: Request) -> DashboardSession:
    return signer(request).load(request.cookies.get(COOKIE)) or new_session()


def principal_for_key(state: AppState, key_id: str, sid: Optional[str] = None) -> Optional[Principal]:
    """The key's principal while it exists and is not revoked, and the session `sid` was not logged
    out (checked on every page)."""
    with session_scope(state.settings.database_url) as session:
        if sid is not None and session_revoked(session, sid):
            return None
        row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        return Principal(key_id=row.id, name=row.name, tenant=row.tenant, scopes=frozenset(row.scopes))


async def viewer_or_none(request: Request, state: StateDep) -> Viewer:
    """The viewer, anonymous when nobody is logged in (login page, error pages)."""
    session = read_session(request)
    principal = ANONYMOUS if not state.settings.auth_enabled else None
    if principal is None and session.key_id:
        principal = await run_in_threadpool(principal_for_key, state, session.key_id, session.sid)
        if principal is None:
            session = new_session()  # logged out, or its key revoked: start over as a visitor
    if principal is None:
        principal = Principal(key_id=None, name="", tenant=None, scopes=frozenset())
    return Viewer(principal, session, signer(request).csrf_token(session), state.settings.auth_enabled)


async def reviewer(request: Request, viewer: Annotated[Viewer, Depends(viewer_or_none)]) -> Viewer:
    """The viewer of every review page: a key with the review (or admin) scope, unless auth is off."""
    if not viewer.can("review"):
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return viewer


AnyViewerDep = Annotated[Viewer, Depends(viewer_or_none)]
ReviewerDep = Annotated[Viewer, Depends(reviewer)]


def end_session(state: AppState, session: DashboardSession) -> None:
    """Logout: the session id is refused from now on, even with a copy of its cookie."""
    with session_scope(state.settings.database_url) as db:
        revoke_session(db, session.sid, session.expires)


def attach(response: Response, request: Request, session: DashboardSession) -> Response:
    """Set the session cookie when it is new (first visit, login, logout)."""
    if session.is_new:
        response.set_cookie(COOKIE, signer(request).dump(session), max_age=max(int(session.expires - time.time()), 0),
                            path=PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response
