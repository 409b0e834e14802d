"""Every error the API returns has the same JSON body: {error, message, details[{field, message, limit}]}."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any, Optional, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rerankq.schemas import ErrorBody, ErrorDetail


class ApiError(Exception):
    """An error with a status, a code and (for bad input) the field and limit it concerns."""

    def __init__(self, status: int, code: str, message: str, *, field: Optional[str] = None,
                 limit: Any = None, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = [ErrorDetail(field=field, message=message, limit=limit)] if field else []
        self.headers = headers


def error_response(status: int, code: str, message: str, details: Sequence[ErrorDetail] = (),
                   headers: Optional[dict[str, str]] = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=list(details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


REJECTION_STATE = "rejection"  # scope["state"] key: the error code of a refused request, for the metrics


def mark_rejection(scope: MutableMapping[str, Any], code: str) -> None:
    """Record why a request is refused, where the refusal is decided (the HTTP metrics count it)."""
    scope.setdefault("state", {})[REJECTION_STATE] = code


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _limit(ctx: dict) -> Any:
    """The bound a value broke (max_length, ge, le, ...), as pydantic reports it."""
    return next((ctx[key] for key in ("limit_value", "ge", "le", "gt", "lt") if ctx.get(key) is not None), None)


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        mark_rejection(request.scope, "malformed_json")
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    details = [ErrorDetail(field=_field_name(tuple(e.get("loc", ()))), message=e.get("msg", "invalid"),
                           limit=_limit(e.get("ctx") or {}))
               for e in errors]
    summary = "; ".join(f"{d.field}: {d.message}" for d in details[:5])
    mark_rejection(request.scope, "invalid_request")
    return error_response(422, "invalid_request", summary, details)


async def _api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    mark_rejection(request.scope, exc.code)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    code = codes.get(exc.status_code, "http_error")
    mark_rejection(request.scope, code)
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each of these is registered for its own class.
    app.add_exception_handler(RequestValidationError, cast(Any, _validation_handler))
    app.add_exception_handler(ApiError, cast(Any, _api_error_handler))
    app.add_exception_handler(StarletteHTTPException, cast(Any, _http_handler))
