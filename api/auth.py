"""Bearer API keys with scopes; with auth disabled every caller is an anonymous admin."""

from __future__ import annotations

from typing import Annotated, Callable, Optional

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from api.state import AppState, StateDep
from api.errors import ApiError
from store.db import session_scope
from store.keys import ANONYMOUS, Principal, verify_key


def lookup_key(state: AppState, token: str) -> Optional[Principal]:
    with session_scope(state.settings.database_url) as session:
        return verify_key(session, token)


EARLY_PRINCIPAL = "rerankq_principal"


async def authenticate(state: AppState, authorization: Optional[str]) -> Principal:
    """The caller's Principal from its `Authorization` header, else 401 (ANONYMOUS with auth off)."""
    if not state.settings.auth_enabled:
        return ANONYMOUS
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(401, "unauthorized", "missing `Authorization: Bearer <api key>` header",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = await run_in_threadpool(lookup_key, state, authorization[7:].strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require(scope: str) -> Callable:
    """A dependency giving the caller's Principal if its key carries `scope`, else 401/403."""

    async def dependency(request: Request, state: StateDep,
                         authorization: Annotated[Optional[str], Header()] = None) -> Principal:
        # api.early_auth checked the key of a request with a body before the body was read.
        principal = getattr(request.state, EARLY_PRINCIPAL, None) or await authenticate(state, authorization)
        if not principal.allows(scope):
            raise ApiError(403, "forbidden", f"this key lacks the '{scope}' scope")
        return principal

    return dependency


SubmitDep = Annotated[Principal, Depends(require("submit"))]
ReadDep = Annotated[Principal, Depends(require("read"))]
ReviewDep = Annotated[Principal, Depends(require("review"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
