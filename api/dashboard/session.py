"""Dashboard sessions: a signed cookie naming an API key id, and CSRF tokens derived from it.

The cookie is an itsdangerous `URLSafeTimedSerializer` token (HMAC-SHA256, a key derived from
RERANKQ_SECRET_KEY for this purpose only) of `[key id, session id, expiry]`; it never holds the
key's secret. Each request re-reads the key, so revoking it ends the session at once, and a session
ended by logout is refused server-side (store/dashboard_sessions.py) even with a copy of its cookie.
Every visitor gets a session (anonymous until login) so that every form, login included, carries a
CSRF token: the session id signed with another derived key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from fastapi import Depends, Request
from itsdangerous import BadData
from itsdangerous import Signer as TokenSigner
from itsdangerous import URLSafeTimedSerializer
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from api.state import AppState, StateDep
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


SESSION_SALT = "rerankq.dashboard.session"
CSRF_SALT = "rerankq.dashboard.csrf"


class Signer:
    """Signs sessions and CSRF tokens with the app's secret (settings.secret_key, or random per process).

    `max_age_s` bounds a cookie's age from when it was signed, whatever expiry it names."""

    def __init__(self, secret: str, max_age_s: Optional[float] = None) -> None:
        key = secret.encode() if secret else secrets.token_bytes(32)
        signer_kwargs: dict[str, Any] = {"digest_method": hashlib.sha256}
        self._sessions = URLSafeTimedSerializer(key, salt=SESSION_SALT, signer_kwargs=signer_kwargs)
        self._csrf = TokenSigner(key, salt=CSRF_SALT, **signer_kwargs)
        self._max_age_s = int(max_age_s) + 1 if max_age_s else None

    def dump(self, session: DashboardSession) -> str:
        return self._sessions.dumps([session.key_id, session.sid, session.expires])

    def load(self, value: Optional[str], now: Optional[float] = None) -> Optional[DashboardSession]:
        """The session, or None when the cookie is missing, forged, malformed or expired."""
        if not value:
            return None
        try:
            payload = self._sessions.loads(value, max_age=self._max_age_s)
        except BadData:  # a bad signature, a cookie too old, or not a token at all
            return None
        if (not isinstance(payload, list) or len(payload) != 3 or not isinstance(payload[0], str)
                or not isinstance(payload[1], str) or not payload[1] or type(payload[2]) is not int):
            return None
        key_id, sid, expires = payload
        if expires < (now or time.time()):
            return None
        return DashboardSession(sid=sid, key_id=key_id, expires=expires)

    def csrf_token(self, session: DashboardSession) -> str:
        return self._csrf.get_signature(session.sid).decode("ascii")

    def csrf_ok(self, session: DashboardSession, token: Optional[str]) -> bool:
        """Compared in constant time (itsdangerous' verify_signature)."""
        if not token:
            return False
        return self._csrf.verify_signature(session.sid, token.encode("utf-8", "replace"))


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
