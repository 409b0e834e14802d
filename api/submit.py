"""Accepting a job: admission control, one committed transaction, then publish.

The job row is committed before its messages are published, so a fast worker always finds
it. If publishing fails, the job stays `queued` with no `published_at`, and a worker's
sweeper publishes it later: an accepted job is never lost.
"""

from __future__ import annotations

import logging
import uuid
from typing import Optional, Sequence

import redis
from sqlalchemy.exc import IntegrityError

from api.deps import AppState
from api.errors import ApiError
from api.metrics import record_submission
from api.served_models import resolve_model
from rerankq.schemas import JobStatus, RerankRequest
from store.db import session_scope
from store.jobs import create_job, find_by_idempotency_key, mark_published
from core.queue import BULK, INTERACTIVE, publish_chunks, queue_name, queues_for

log = logging.getLogger(__name__)


def queue_depth(state: AppState, model: str) -> int:
    """Messages waiting in the model's queues, read in one Redis round trip."""
    pipe = state.redis.pipeline(transaction=False)
    for queue in queues_for(model):
        pipe.llen(queue)
    return sum(int(n) for n in pipe.execute())


def admit(state: AppState, model: str) -> None:
    """429 when the broker already holds more than RERANKQ_MAX_QUEUE_DEPTH messages."""
    limit = state.settings.max_queue_depth
    try:
        depth = queue_depth(state, model)
    except redis.RedisError as error:
        raise ApiError(503, "broker_unavailable", f"the queue cannot be reached: {error}") from error
    if depth >= limit:
        raise ApiError(429, "overloaded", f"{depth} messages are queued (limit {limit}, RERANKQ_MAX_QUEUE_DEPTH); "
                       "retry later", headers={"Retry-After": "2"})


def submit(
    state: AppState,
    requests: Sequence[RerankRequest],
    *,
    kind: str,
    owner: Optional[str] = None,
    idempotency_key: Optional[str] = None,
    callback_url: Optional[str] = None,
) -> tuple[str, str, bool]:
    """Store and publish a job; returns (job id, status, created). A repeated idempotency key
    returns the first job and creates nothing."""
    settings = state.settings
    for request in requests:  # the job, its queue and its results name the served model, never an alias
        request.model = resolve_model(settings, request.model)
    model = requests[0].model or settings.served_model
    if idempotency_key:
        existing = _existing(settings.database_url, owner, idempotency_key)
        if existing is not None:
            return existing + (False,)
    admit(state, model)
    n_pairs = sum(len(r.documents) for r in requests)
    lane = INTERACTIVE if kind == "sync" or n_pairs <= settings.interactive_max_pairs else BULK
    queue = queue_name(model, lane)
    job_id = str(uuid.uuid4())
    try:
        with session_scope(settings.database_url) as session:
            _job, plans = create_job(session, job_id=job_id, requests=requests, model=model, queue=queue,
                                     chunk_pairs=settings.chunk_pairs, kind=kind, owner=owner,
                                     idempotency_key=idempotency_key, callback_url=callback_url)
    except IntegrityError:
        existing = _existing(settings.database_url, owner, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return existing + (False,)
    try:
        if settings.fault_publish_fails:
            raise ConnectionError("publishing disabled by RERANKQ_FAULT_PUBLISH_FAILS")
        publish_chunks(state.celery, job_id, [p.chunk_idx for p in plans], queue)
        with session_scope(settings.database_url) as session:
            mark_published(session, job_id)
    except Exception as error:  # noqa: BLE001 - the sweeper publishes it later
        log.warning("publishing job %s failed (%s); the sweeper will publish it", job_id, error)
    record_submission(kind, model, requests)
    return job_id, JobStatus.queued.value, True


def _existing(url: str, owner: Optional[str], key: str) -> Optional[tuple[str, str]]:
    with session_scope(url) as session:
        job = find_by_idempotency_key(session, owner, key)
        return (job.id, job.status) if job else None
