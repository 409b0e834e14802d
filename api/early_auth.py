"""Check the API key of a request that carries a body before a byte of that body is read.

FastAPI reads and parses the body before it runs dependencies, so without this a caller with no
key could make the API parse 20 MB of JSON just to be told 401. The principal found here goes on
in the request's state, where api.auth's dependency takes it instead of looking the key up again;
that dependency still checks the route's scope.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import EARLY_PRINCIPAL, authenticate
from api.db_errors import UNAVAILABLE, database_unavailable
from api.errors import ApiError, error_response, mark_rejection

BODY_METHODS = {"POST", "PUT", "PATCH"}
KEYED_PREFIXES = ("/v1/", "/v2/")  # every route there requires a key; the dashboard has its own login


class EarlyAuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in BODY_METHODS
                or not scope["path"].startswith(KEYED_PREFIXES)):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.rerankq
        if state.settings.auth_enabled:
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            try:
                principal = await authenticate(state, authorization)
            except ApiError as error:
                await _answer(error, scope, receive, send)
                return
            except UNAVAILABLE as error:
                await _answer(database_unavailable(error), scope, receive, send)
                return
            scope.setdefault("state", {})[EARLY_PRINCIPAL] = principal
        await self.app(scope, receive, send)


async def _answer(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    """The refusal, without reading the body: the server discards what the client still sends."""
    mark_rejection(scope, error.code)
    response = error_response(error.status, error.code, error.message, error.details, error.headers)
    await response(scope, receive, send)
