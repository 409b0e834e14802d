"""Refuse a NUL character in the path or a query parameter with a JSON 422 naming it.

Job ids, filters and search text from the URL end up in SQL: PostgreSQL refuses NUL in text, so
such a request would fail there as a 500 (SQLite takes it). HTTP itself never carries a raw NUL in
the URL, so only a percent-encoded one (%00) can get here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response, mark_rejection
from rerankq.schemas import ErrorDetail


class UrlTextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            field = _field_with_nul(scope)
            if field is not None:
                message = f"{field}: NUL characters (%00) are not accepted"
                mark_rejection(scope, "invalid_request")
                response = error_response(422, "invalid_request", message, [ErrorDetail(field=field, message=message)])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _field_with_nul(scope: Scope):
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string") or b""
    if b"%00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    return None
