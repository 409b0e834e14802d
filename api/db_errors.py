"""The database out of reach is the service's problem for a moment, not a bug: 503 with Retry-After
(which the SDK retries), never a 500 or the driver's message with host and port in it."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.errors import ApiError, error_response, mark_rejection

log = logging.getLogger(__name__)

# Connection refused or lost, SQLite locked past its busy timeout, the pool exhausted.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)
RETRY_AFTER_S = "2"


def database_unavailable(error: BaseException) -> ApiError:
    log.warning("database unavailable: %s", error)
    return ApiError(503, "database_unavailable", "the database cannot be reached right now; retry later",
                    headers={"Retry-After": RETRY_AFTER_S})


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    problem = database_unavailable(exc)
    mark_rejection(request.scope, problem.code)
    return error_response(problem.status, problem.code, problem.message, headers=problem.headers)


def install_database_error_handler(app: FastAPI) -> None:
    for error_class in UNAVAILABLE:
        app.add_exception_handler(error_class, _handler)
