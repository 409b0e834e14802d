"""Python SDK: `RerankClient` (blocking) and `AsyncRerankClient` (asyncio) over httpx.

Each operation is written once, as a generator that yields what to do next (an HTTP call or a
pause) and receives the answer; the two clients only differ in how they run it (httpx.Client and
time.sleep, or httpx.AsyncClient and asyncio.sleep). Retries therefore behave identically:
429 and 502/503/504 are retried after `Retry-After` (or an exponential backoff), connection
errors are retried where resending is safe, and everything else raises an error from
rerankq.errors. Results are the service's own wire models (rerankq.schemas).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Generator, Iterable, Iterator, Mapping, Optional, TypeVar, Union
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from rerankq.errors import (
    JobCancelled,
    JobFailed,
    JobTimeout,
    Overloaded,
    ServiceUnavailable,
    error_from_response,
    retry_after,
)
from rerankq.schemas import DocumentObject, JobAccepted, JobStatus, JobView, RerankRequest, RerankResponse

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"
MAX_LONG_POLL_S = 30.0  # the server holds a GET /v1/jobs/{id}?wait= for at most 60 s
RETRYABLE = (429, 502, 503, 504)
REFUSED_BEFORE_WORK = (429, 503)  # the API's own refusals: nothing was created, so resending is safe
Document = Union[str, Mapping[str, str], DocumentObject]
RequestLike = Union[RerankRequest, Mapping[str, Any]]


@dataclass(frozen=True)
class _Call:
    """One HTTP call; `idempotent` says whether resending after a lost answer is harmless."""

    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True


@dataclass(frozen=True)
class _Pause:
    seconds: float


Flow = Generator[Union[_Call, _Pause], Any, T]


def _document(doc: Document) -> Union[str, dict]:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, DocumentObject):
        return {"text": doc.text}
    return {"text": doc["text"]}


def _job_path(job_id: str) -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}"


def _request_body(request: RequestLike) -> dict:
    if isinstance(request, BaseModel):
        return request.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in dict(request).items() if v is not None}


class _Operations:
    """Request building, response parsing, retry and polling policy, shared by both clients."""

    def __init__(self, max_retries: int, backoff_s: float, poll_interval: float, max_poll_interval: float,
                 long_poll_s: float = 0.0) -> None:
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.long_poll_s = long_poll_s
        self.clock = time.monotonic

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** (attempt - 1), 30.0)

    def call(self, call: _Call) -> Flow[httpx.Response]:
        """Send one call, retrying overload, and (where resending is safe) gateway and connection errors."""
        attempt = 0
        while True:
            try:
                response = yield call
            except httpx.TransportError as error:
                resend_safe = call.idempotent or isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))
                if not resend_safe or attempt >= self.max_retries:
                    raise ServiceUnavailable(f"{call.method} {call.path}: {type(error).__name__}: {error}") from error
                attempt += 1
                yield _Pause(self.backoff(attempt))
                continue
            retryable = RETRYABLE if call.idempotent else REFUSED_BEFORE_WORK
            if response.status_code in retryable and attempt < self.max_retries:
                attempt += 1
                hint = retry_after(response)
                yield _Pause(hint if hint is not None else self.backoff(attempt))
                continue
            if response.is_success:
                return response
            failure = error_from_response(response)
            if isinstance(failure, Overloaded):
                failure.attempts = attempt + 1
            raise failure

    def rerank(self, body: dict, wait_timeout: Optional[float]) -> Flow[RerankResponse]:
        response = yield from self.call(_Call("POST", "/v1/rerank", json=body, idempotent=False))
        if response.status_code == 202:  # not done within the server's sync timeout: poll the job
            accepted = JobAccepted.model_validate(response.json())
            view = yield from self.wait(accepted.id, wait_timeout)
            assert view.results is not None, "a succeeded job's view carries its results"
            return view.results[0]
        return RerankResponse.model_validate(response.json())

    def submit(self, requests: Iterable[RequestLike], callback_url: Optional[str],
               idempotency_key: Optional[str]) -> Flow[JobAccepted]:
        body: dict[str, Any] = {"requests": [_request_body(r) for r in requests]}
        if callback_url:
            body["callback_url"] = callback_url
        # A key always goes along, so resending after a lost answer can never create a second job.
        headers = {"Idempotency-Key": idempotency_key or f"sdk-{uuid.uuid4()}"}
        response = yield from self.call(_Call("POST", "/v1/jobs", json=body, headers=headers))
        return JobAccepted.model_validate(response.json())

    def get(self, job_id: str, wait_s: float = 0.0) -> Flow[JobView]:
        """The job; a finished job's results come a page of requests per answer, so the pages
        after the first are fetched too and the view holds every request's results."""
        params = f"?wait={wait_s:.3f}" if wait_s > 0 else ""
        response = yield from self.call(_Call("GET", _job_path(job_id) + params))
        view = JobView.model_validate(response.json())
        page = view.page
        results = list(view.results or [])
        while view.results is not None and page is not None and page.next_offset is not None:
            path = f"{_job_path(job_id)}?offset={page.next_offset}&limit={page.limit}"
            following = JobView.model_validate((yield from self.call(_Call("GET", path))).json())
            if following.page is None or following.page.offset != page.next_offset:
                break  # a server without pages answered: it already sent everything
            results.extend(following.results or [])
            page = following.page
        if view.page is not None:
            view = view.model_copy(update={"results": results, "page": view.page.model_copy(
                update={"limit": len(results), "next_offset": None, "next": None})})
        return view

    def cancel(self, job_id: str) -> Flow[JobView]:
        response = yield from self.call(_Call("DELETE", _job_path(job_id)))
        return JobView.model_validate(response.json())

    def wait(self, job_id: str, timeout: Optional[float]) -> Flow[JobView]:
        """Long-poll until the job finishes: each GET asks the server to answer as soon as the job
        is done (`?wait=`, at most long_poll_s). An answer that comes back early and unfinished
        (a server without long polling) is followed by a pause backing off from poll_interval
        to max_poll_interval."""
        deadline = None if timeout is None else self.clock() + timeout
        delay = self.poll_interval
        while True:
            remaining = None if deadline is None else deadline - self.clock()
            wait_s = self.long_poll_s if remaining is None else max(0.0, min(self.long_poll_s, remaining))
            asked = self.clock()
            view = yield from self.get(job_id, wait_s)
            if view.status is JobStatus.succeeded:
                return view
            if view.status is JobStatus.cancelled:
                raise JobCancelled(f"job {job_id} was cancelled: {view.error}", job_id=job_id, job=view)
            if view.status is JobStatus.failed:
                raise JobFailed(f"job {job_id} failed: {view.error}", job_id=job_id, job=view)
            remaining = None if deadline is None else deadline - self.clock()
            if remaining is not None and remaining <= 0:
                raise JobTimeout(f"job {job_id} is still {view.status.value} after {timeout}s "
                                 f"({view.progress.done}/{view.progress.total} pairs)", job_id=job_id, job=view)
            if self.clock() - asked < wait_s / 2:  # answered at once: the server did not hold the poll
                yield _Pause(delay if remaining is None else min(delay, remaining))
                delay = min(delay * 2, self.max_poll_interval)


def _rerank_body(query: str, documents: Iterable[Document], **options: Any) -> dict:
    body = {"query": query, "documents": [_document(d) for d in documents]}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


class _ClientBase:
    def __init__(self, base_url: Optional[str], api_key: Optional[str], headers: Optional[Mapping[str, str]],
                 timeout: float, max_retries: int, backoff_s: float, poll_interval: float,
                 max_poll_interval: float) -> None:
        self.base_url = (base_url or os.environ.get("RERANKQ_URL") or DEFAULT_URL).rstrip("/")
        api_key = api_key if api_key is not None else os.environ.get("RERANKQ_API_KEY")
        self._headers = {"User-Agent": "rerankq-python", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        # Each wait's GET is held open for at most a third of the HTTP timeout (the server: 60 s).
        self._ops = _Operations(max_retries, backoff_s, poll_interval, max_poll_interval,
                                long_poll_s=min(MAX_LONG_POLL_S, timeout / 3))

    def _request(self, http: Union[httpx.Client, httpx.AsyncClient], call: _Call) -> httpx.Request:
        return http.build_request(call.method, call.path, json=call.json, headers=call.headers)


class RerankClient(_ClientBase):
    """Blocking client. `RerankClient(base_url, api_key)`; both default to RERANKQ_URL / RERANKQ_API_KEY.

    `transport` takes any httpx transport (e.g. `httpx.ASGITransport` or a mock) for tests."""

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 60.0,
                 max_retries: int = 3, backoff_s: float = 0.5, poll_interval: float = 0.25,
                 max_poll_interval: float = 2.0, headers: Optional[Mapping[str, str]] = None,
                 transport: Optional[httpx.BaseTransport] = None) -> None:
        super().__init__(base_url, api_key, headers, timeout, max_retries, backoff_s, poll_interval,
                         max_poll_interval)
        self._http = httpx.Client(base_url=self.base_url, headers=self._headers, timeout=timeout,
                                  transport=transport)
        self._sleep = time.sleep

    def _run(self, flow: Flow[T]) -> T:
        step = next(flow)
        while True:
            try:
                if isinstance(step, _Pause):
                    self._sleep(step.seconds)
                    answer: Any = None
                else:
                    try:
                        answer = self._http.send(self._request(self._http, step))
                    except httpx.TransportError as error:
                        step = flow.throw(error)
                        continue
                step = flow.send(answer)
            except StopIteration as done:
                return done.value

    def rerank(self, query: str, documents: Iterable[Document], *, top_n: Optional[int] = None,
               instruction: Optional[str] = None, model: Optional[str] = None, return_documents: bool = False,
               max_tokens_per_doc: Optional[int] = None, wait_timeout: Optional[float] = 300.0) -> RerankResponse:
        """Rank `documents` for `query` (POST /v1/rerank); polls the job if the server answers 202."""
        body = _rerank_body(query, documents, top_n=top_n, instruction=instruction, model=model,
                            return_documents=return_documents or None, max_tokens_per_doc=max_tokens_per_doc)
        return self._run(self._ops.rerank(body, wait_timeout))

    def submit(self, requests: Iterable[RequestLike], *, callback_url: Optional[str] = None,
               idempotency_key: Optional[str] = None) -> JobAccepted:
        """Queue a job of rerank requests (POST /v1/jobs). The same idempotency key returns the same job."""
        return self._run(self._ops.submit(requests, callback_url, idempotency_key))

    def get(self, job_id: str) -> JobView:
        return self._run(self._ops.get(job_id))

    def cancel(self, job_id: str) -> JobView:
        return self._run(self._ops.cancel(job_id))

    def wait(self, job_id: str, timeout: Optional[float] = 300.0) -> JobView:
        """The succeeded job; raises JobFailed, JobCancelled or JobTimeout (None waits for ever)."""
        return self._run(self._ops.wait(job_id, timeout))

    def iter_results(self, job_id: str, timeout: Optional[float] = 300.0) -> Iterator[RerankResponse]:
        """One ranked result set per request of the job, in request order, once it has finished."""
        yield from (self.wait(job_id, timeout).results or [])

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RerankClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


class AsyncRerankClient(_ClientBase):
    """The asyncio twin of RerankClient: same arguments, same methods, awaited."""

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None, *, timeout: float = 60.0,
                 max_retries: int = 3, backoff_s: float = 0.5, poll_interval: float = 0.25,
                 max_poll_interval: float = 2.0, headers: Optional[Mapping[str, str]] = None,
                 transport: Optional[httpx.AsyncBaseTransport] = None) -> None:
        super().__init__(base_url, api_key, headers, timeout, max_retries, backoff_s, poll_interval,
                         max_poll_interval)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=timeout,
                                       transport=transport)
        self._sleep = asyncio.sleep

    async def _run(self, flow: Flow[T]) -> T:
        step = next(flow)
        while True:
            try:
                if isinstance(step, _Pause):
                    await self._sleep(step.seconds)
                    answer: Any = None
                else:
                    try:
                        answer = await self._http.send(self._request(self._http, step))
                    except httpx.TransportError as error:
                        step = flow.throw(error)
                        continue
                step = flow.send(answer)
            except StopIteration as done:
                return done.value

    async def rerank(self, query: str, documents: Iterable[Document], *, top_n: Optional[int] = None,
                     instruction: Optional[str] = None, model: Optional[str] = None, return_documents: bool = False,
                     max_tokens_per_doc: Optional[int] = None,
                     wait_timeout: Optional[float] = 300.0) -> RerankResponse:
        body = _rerank_body(query, documents, top_n=top_n, instruction=instruction, model=model,
                            return_documents=return_documents or None, max_tokens_per_doc=max_tokens_per_doc)
        return await self._run(self._ops.rerank(body, wait_timeout))

    async def submit(self, requests: Iterable[RequestLike], *, callback_url: Optional[str] = None,
                     idempotency_key: Optional[str] = None) -> JobAccepted:
        return await self._run(self._ops.submit(requests, callback_url, idempotency_key))

    async def get(self, job_id: str) -> JobView:
        return await self._run(self._ops.get(job_id))

    async def cancel(self, job_id: str) -> JobView:
        return await self._run(self._ops.cancel(job_id))

    async def wait(self, job_id: str, timeout: Optional[float] = 300.0) -> JobView:
        return await self._run(self._ops.wait(job_id, timeout))

    async def iter_results(self, job_id: str, timeout: Optional[float] = 300.0) -> AsyncIterator[RerankResponse]:
        for result in (await self.wait(job_id, timeout)).results or []:
            yield result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncRerankClient":
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        await self.aclose()

