"""Enforce the document, request and character limits while a submit body is parsed.

FastAPI builds every object of a body before a route sees it: 20 MB of `{"text": ""}` became 1.6
million pydantic objects (about 1.2 GB) before `check_request` counted them, and the event loop
stalled for seconds meanwhile. This middleware feeds the body of POST /v1/rerank, /v2/rerank and
/v1/jobs through ijson's streaming parser as it arrives, counting documents, requests, characters
and JSON values without building anything, and refuses the body (422, naming field and limit) as
soon as one limit is crossed; the rest of it is read and dropped. The same pass refuses NUL
characters and lone surrogates in any string: PostgreSQL's text and the tokenizers reject them
later, after the job was accepted. A body that passes is handed on unchanged; api.limits still
checks the parsed request (it is cheap once the body is known to be within the limits). Other JSON
bodies under /v1/ (a review) get the value, depth and NUL checks only.
"""

from __future__ import annotations

import asyncio
from typing import Optional

import ijson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response, mark_rejection
from api.limits import _too_big
from rerankq.schemas import MAX_INT32
from core.settings import Settings
from rerankq.storable_text import MESSAGE as UNSTORABLE_MESSAGE

REQUEST, JOB, OTHER = "request", "job", "other"
SUBMIT_PATHS = {"/v1/rerank": REQUEST, "/v2/rerank": REQUEST, "/v1/jobs": JOB}
OTHER_PREFIX = "/v1/"  # other JSON bodies (a review): only the JSON value, depth and NUL checks
VALUES_PER_DOCUMENT = 8  # JSON values a body may hold per allowed document (a {text, title} object is 3)
VALUES_PER_REQUEST = 64  # ... and per allowed request, for its other fields and any extra ones
SLICE_BYTES = 32768
MAX_DEPTH = 16  # a job's documents sit at depth 5


class BodyRefused(Exception):
    def __init__(self, error: ApiError) -> None:
        self.error = error


class SubmitBodyScanner:
    """Fed the body piece by piece; raises BodyRefused at the first limit crossed. `kind`: REQUEST (one
    rerank request), JOB (requests of a job) or OTHER."""

    def __init__(self, settings: Settings, kind: str) -> None:
        self.settings = settings
        self.kind = kind
        self.is_job = kind == JOB
        per_request = settings.max_documents * VALUES_PER_DOCUMENT + VALUES_PER_REQUEST
        self.max_values = per_request * settings.max_requests_per_job + VALUES_PER_REQUEST if self.is_job else per_request
        self.values = 0
        self.path: list = []  # key or index of each container level down to the current value
        self.arrays: list[bool] = []  # whether each open container is an array
        self.events = ijson.sendable_list()
        # Numbers as floats: an integer of thousands of digits then fails as a parse error (overflow)
        # instead of breaking the parser's event list.
        self.parser = ijson.basic_parse_coro(self.events, use_float=True)

    def feed(self, data: bytes) -> None:
        # In slices: the parser turns all it is sent into events at once, and one 20 MB piece of tiny
        # documents would be millions of them (a chunked body arrives here as one piece).
        for start in range(0, len(data), SLICE_BYTES):
            try:
                self.parser.send(data[start:start + SLICE_BYTES])
            except Exception as error:  # noqa: BLE001 - any failure to read the body refuses it
                raise self._unreadable(error) from error
            self._consume()

    def finish(self) -> None:
        try:
            self.parser.close()
        except Exception as error:  # noqa: BLE001
            raise self._unreadable(error) from error
        self._consume()

    def _unreadable(self, error: Exception) -> BodyRefused:
        """Not JSON, or a number too big for any field (400 malformed_json), or a low surrogate escape
        without its pair, which the parser cannot decode (422); each names where it stopped."""
        if not isinstance(error, (ijson.JSONError, UnicodeDecodeError)):
            # The parser's event list may hold a broken entry after other failures: never read it.
            return BodyRefused(ApiError(422, "invalid_request", f"body: a value cannot be read "
                                        f"({type(error).__name__})", field="body"))
        self._consume()  # the events before the failure (a limit crossed there is the better answer)
        path = list(self.path)
        if self.arrays and self.arrays[-1]:
            path[-1] += 1  # the failing value is the array's next one
        field = _dotted(path)
        if isinstance(error, UnicodeDecodeError):
            return BodyRefused(ApiError(422, "invalid_request", f"{field}: {UNSTORABLE_MESSAGE}", field=field))
        message = " ".join(str(error).split()[:4]).rstrip(".")
        if "overflow" in message:  # valid JSON, but beyond 64 bits: no field takes such a number
            return BodyRefused(ApiError(422, "invalid_request", f"{field}: the number is too large ({message})",
                                        field=field, limit=MAX_INT32))
        return BodyRefused(ApiError(400, "malformed_json", f"the request body is not valid JSON at {field} "
                                    f"({message})", field=field))

    def _consume(self) -> None:
        """Walk the events, keeping the path (key or index per level) of the current value. The hot loop
        of a big body: plain comparisons only, the limit checks only where a limited value sits."""
        path, arrays, settings = self.path, self.arrays, self.settings
        base = 2 if self.is_job else 0  # a request's fields sit under requests.<i> in a job
        for event, value in self.events:
            if event == "map_key":
                path[-1] = value
                continue
            if event == "end_map" or event == "end_array":
                arrays.pop()
                path.pop()
                continue
            if arrays and arrays[-1]:
                path[-1] += 1
            self.values += 1
            if self.values > self.max_values:
                raise BodyRefused(_too_big("body", f"more than {self.max_values} JSON values ({VALUES_PER_DOCUMENT} "
                                           "per allowed document)", self.max_values, "RERANKQ_MAX_DOCUMENTS"))
            depth = len(path)
            in_request = depth > base and (base == 0 or (path[0] == "requests" and arrays[1])) and self.kind != OTHER
            if event == "string":
                if "\x00" in value:
                    field = _dotted(path)
                    raise BodyRefused(ApiError(422, "invalid_request", f"{field}: {UNSTORABLE_MESSAGE}", field=field))
                if in_request:
                    self._check_text(path, base, depth, value)
            elif event == "start_map" or event == "start_array":
                if depth >= MAX_DEPTH:
                    raise BodyRefused(_too_big("body", f"JSON nested deeper than {MAX_DEPTH} levels", MAX_DEPTH,
                                               "a fixed limit"))
                arrays.append(event == "start_array")
                path.append(-1 if event == "start_array" else None)
            if in_request and depth == base + 2 and path[base] == "documents" and arrays[base + 1] \
                    and path[base + 1] >= settings.max_documents:
                raise BodyRefused(_too_big(f"requests.{path[1]}.documents" if base else "documents",
                                           "more documents than allowed", settings.max_documents,
                                           "RERANKQ_MAX_DOCUMENTS"))
            if self.is_job and depth == 2 and path[0] == "requests" and arrays[1] \
                    and path[1] >= settings.max_requests_per_job:
                raise BodyRefused(_too_big("requests", "more requests than allowed", settings.max_requests_per_job,
                                           "RERANKQ_MAX_REQUESTS_PER_JOB"))
        del self.events[:]

    def _check_text(self, path: list, base: int, depth: int, value: str) -> None:
        settings, name = self.settings, path[base]
        prefix = f"requests.{path[1]}." if base else ""
        if depth == base + 1 and (name == "query" or name == "instruction"):
            if len(value) > settings.max_query_chars:
                raise BodyRefused(_too_big(f"{prefix}{name}", f"{len(value)} characters is more than allowed",
                                           settings.max_query_chars, "RERANKQ_MAX_QUERY_CHARS"))
        elif name == "documents" and (depth == base + 2 or (depth == base + 3 and path[-1] == "text")) \
                and self.arrays[base + 1] and len(value) > settings.max_document_chars:
            raise BodyRefused(_too_big(f"{prefix}documents.{path[base + 1]}", f"{len(value)} characters is more "
                                       "than allowed", settings.max_document_chars, "RERANKQ_MAX_DOCUMENT_CHARS"))


def _dotted(path: list) -> str:
    return ".".join(str(part) for part in path) or "body"


def _kind(scope: Scope) -> Optional[str]:
    if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
        return None
    path = scope.get("path", "")
    return SUBMIT_PATHS.get(path) or (OTHER if path.startswith(OTHER_PREFIX) else None)


def _is_json(scope: Scope) -> bool:
    """FastAPI parses a body as JSON when it has no content type or a JSON one; only those are scanned."""
    content_type = dict(scope.get("headers") or []).get(b"content-type")
    if content_type is None:
        return True
    media = content_type.decode("latin-1").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyScanMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _kind(scope)
        if kind is None or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        scanner = SubmitBodyScanner(self.settings, kind)
        parts: list[bytes] = []
        refused: Optional[ApiError] = None
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                pending: list[Message] = [message]
                break
            data = message.get("body", b"")
            more = message.get("more_body", False)
            if refused is None:
                try:
                    for start in range(0, len(data), SLICE_BYTES):  # a chunked body comes as one piece
                        scanner.feed(data[start:start + SLICE_BYTES])
                        await asyncio.sleep(0)  # let other requests (/healthz) in between slices
                    if not more and (parts or data):
                        scanner.finish()
                    parts.append(data)
                except BodyRefused as problem:
                    refused, parts = problem.error, []  # keep reading (and dropping) the rest
            if not more:
                pending = [{"type": "http.request", "body": b"".join(parts), "more_body": False}]
                break
        if refused is not None:
            mark_rejection(scope, refused.code)
            response = error_response(refused.status, refused.code, refused.message, refused.details)
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)
