"""API metrics (prometheus-client, prefix `rerankq_`) and the `/metrics` endpoint.

Requests are labelled by route template (`/v1/jobs/{job_id}`), never by raw path, so label
values stay few. Queue and store gauges are read at scrape time (api.queue_metrics,
api.store_metrics). Run one API process per container and scale containers: each process
has its own counters.
"""

from __future__ import annotations

import time
from typing import Sequence

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.state import StateDep
from api.errors import REJECTION_STATE
from api.drift_metrics import DriftCollector
from api.metrics_access import metrics_access
from api.queue_metrics import BrokerCollector
from api.store_metrics import StoreCollector
from api.wait_metrics import WaitersCollector
from rerankq.schemas import RerankRequest

disable_created_metrics()  # the *_created series only double what every scrape sends

LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
DOCUMENTS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
SUBMIT_ROUTES = {"/v1/rerank", "/v2/rerank", "/v1/jobs"}
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter("rerankq_http_requests", "HTTP requests answered, by route template, method and status.",
                        ["route", "method", "status"])
HTTP_DURATION = Histogram("rerankq_http_request_duration_seconds",
                          "Time to answer a request (POST /v1/rerank includes the scoring).", ["route"],
                          buckets=LATENCY)
JOBS_SUBMITTED = Counter("rerankq_jobs_submitted", "Jobs stored and queued, by kind (sync: POST /v1/rerank) "
                         "and model.", ["kind", "model"])
DOCUMENTS_PER_REQUEST = Histogram("rerankq_documents_per_request", "Documents per rerank request (query).",
                                  buckets=DOCUMENTS)
REJECTIONS = Counter("rerankq_rejections", "Submissions refused, by error code (limit_exceeded, unknown_model, "
                     "overloaded, invalid_request, body_too_large, unauthorized ...).", ["reason"])


def record_submission(kind: str, model: str, requests: Sequence[RerankRequest]) -> None:
    JOBS_SUBMITTED.labels(kind=kind, model=model).inc()
    for request in requests:
        DOCUMENTS_PER_REQUEST.observe(len(request.documents))


def route_label(scope: Scope) -> str:
    """The matched route's template. A body refused before routing (413 on a declared length)
    has no route yet; the submit paths have no parameters, so their path is their template."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    return scope["path"] if scope["path"] in SUBMIT_ROUTES else UNMATCHED


def rejection_reason(scope: Scope, status: int) -> str:
    """The error code recorded where the request was refused (api.errors.mark_rejection)."""
    code = scope.get("state", {}).get(REJECTION_STATE)
    return code if isinstance(code, str) and code else f"http_{status}"


class HttpMetricsMiddleware:
    """Counts and times every HTTP request; a refused submission also counts under its error code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        submit = scope["method"] == "POST"

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = route_label(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            HTTP_DURATION.labels(route=route).observe(time.perf_counter() - started)
            if submit and route in SUBMIT_ROUTES and _refused(status):
                REJECTIONS.labels(reason=rejection_reason(scope, status)).inc()


def _refused(status: int) -> bool:
    return 400 <= status < 500 or status == 503


router = APIRouter(include_in_schema=False)


@router.get("/metrics", dependencies=[Depends(metrics_access)])
def metrics(state: StateDep) -> Response:
    """Process counters plus queue and store gauges read now (one Redis pipeline, a few COUNTs)."""
    scrape = CollectorRegistry()
    scrape.register(BrokerCollector(state.settings, state.redis))
    scrape.register(StoreCollector(state.settings))
    scrape.register(WaitersCollector(state.waiters))
    scrape.register(DriftCollector(state.settings, state.redis))
    return Response(generate_latest(REGISTRY) + generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)
