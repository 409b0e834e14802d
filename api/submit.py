"""Accepting a job: admission control, one committed transaction, then publish.

The job row is committed before its messages are published, so a fast worker always finds
it. If publishing fails, the job stays `queued` with no `published_at`, and a worker's
sweeper publishes it later: an accepted job is never lost.

The jobs that concurrent requests submit together are written by the process's group committer
(store/group_commit.py) in one transaction and published together right after it commits
(api/job_publish.py); the caller waits for both. A job whose write fails (a reused idempotency
key, a tenant over quota) is retried alone, so only its own request sees the error.
"""

from __future__ import annotations

import logging
import uuid
from typing import Optional, Sequence

import redis
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.admission import Reservation, try_admit
from api.state import AppState
from api.errors import ApiError
from api.idempotency import check_same_body, request_fingerprint
from api.job_publish import Submission, publish_stored
from api.metrics import record_submission
from api.served_models import resolve_model
from api.shadow import shadow_later
from rerankq.schemas import JobStatus, RerankRequest
from store.db import session_scope
from store.group_commit import committer
from store.jobs import ChunkPlan, NewJob, find_by_idempotency_key, insert_jobs
from store.tenant_quota import lock_tenant, tenant_pending_pairs
from core.queue import BULK, INTERACTIVE, queue_name

log = logging.getLogger(__name__)


def admit(state: AppState, model: str, messages: int) -> Reservation:
    """429 when the model's queued and in-flight messages, with the submits admitted and not yet
    published, reach RERANKQ_MAX_QUEUE_DEPTH; otherwise a reservation for this job's messages,
    decided atomically (api/admission.py), to release once it is published."""
    limit = state.settings.max_queue_depth
    try:
        admitted, depth, reservation = try_admit(state.redis, model, messages, limit)
    except redis.RedisError as error:
        raise ApiError(503, "broker_unavailable", f"the queue cannot be reached: {error}") from error
    if not admitted:
        raise ApiError(429, "overloaded", f"{depth} messages are queued or in flight (limit {limit}, "
                       "RERANKQ_MAX_QUEUE_DEPTH); retry later", headers={"Retry-After": "2"})
    return reservation


def check_tenant_quota(session, owner: Optional[str], limit: int) -> None:
    """429 when the tenant's queued and running pairs, this job's included, exceed its quota."""
    if owner is None or not limit:
        return
    pending = tenant_pending_pairs(session, owner)
    if pending > limit:
        raise ApiError(429, "tenant_quota_exceeded", f"this job would give tenant '{owner}' {pending} pairs queued "
                       f"or being scored (limit {limit}, RERANKQ_MAX_TENANT_PAIRS); retry when some have finished",
                       headers={"Retry-After": "2"})


def new_job_id() -> str:
    return str(uuid.uuid4())


def submit(
    state: AppState,
    requests: Sequence[RerankRequest],
    *,
    kind: str,
    owner: Optional[str] = None,
    idempotency_key: Optional[str] = None,
    callback_url: Optional[str] = None,
    job_id: Optional[str] = None,
) -> tuple[str, str, bool]:
    """Store and publish a job; returns (job id, status, created). A repeated idempotency key
    returns the first job and creates nothing. `job_id` lets a caller that waits for the job
    listen for it before it can finish."""
    settings = state.settings
    fingerprint = request_fingerprint(requests, callback_url)  # the body as sent, before aliases resolve
    for request in requests:  # the job, its queue and its results name the served model, never an alias
        request.model = resolve_model(settings, request.model)
    model = requests[0].model or settings.served_model
    if idempotency_key:
        existing = _existing(settings.database_url, owner, idempotency_key, fingerprint)
        if existing is not None:
            return existing + (False,)
    n_pairs = sum(len(r.documents) for r in requests)
    lane = INTERACTIVE if kind == "sync" or n_pairs <= settings.interactive_max_pairs else BULK
    queue = queue_name(model, lane)
    job = NewJob(job_id or new_job_id(), requests, model, queue, settings.chunk_pairs, kind, owner,
                 idempotency_key, callback_url, fingerprint)
    submission = Submission(job, settings.max_tenant_pairs, state, admit(state, model, len(job.plans)))
    writer = committer(settings.database_url)
    try:
        try:
            writer.run(_store_jobs, submission, after=publish_stored,  # which also releases the reservation
                       share_transaction=True)  # with the published marks of the jobs before it
        except IntegrityError:
            existing = _existing(settings.database_url, owner, idempotency_key, fingerprint) if idempotency_key else None
            if existing is None:
                raise
            return existing + (False,)
    finally:
        if submission.reservation is not None and not submission.released:  # the group failed before publishing
            _release(state, submission.reservation)
    record_submission(kind, model, requests)
    shadow_later(state, job.job_id, model, len(requests))  # a sampled copy per shadow model, off this thread
    return job.job_id, JobStatus.queued.value, True


def _store_jobs(session: Session, items: Sequence[Submission]) -> list[list[ChunkPlan]]:
    """One group of submits in one transaction. Tenants under a quota are locked in a fixed order
    (no deadlock between two API processes) and checked after the rows are written, so the count
    includes the group's own jobs; a 429 fails the group, which is then retried job by job."""
    quotas = sorted({(item.job.owner, item.tenant_limit) for item in items
                     if item.job.owner is not None and item.tenant_limit})
    for tenant, _limit in quotas:
        lock_tenant(session, tenant)
    plans = insert_jobs(session, [item.job for item in items])
    for tenant, limit in quotas:
        check_tenant_quota(session, tenant, limit)  # once per tenant: the count includes all its jobs here
    return plans


def _existing(url: str, owner: Optional[str], key: str, fingerprint: str) -> Optional[tuple[str, str]]:
    """The key's job (id, status) when it exists and was made from this body; 422 for another body."""
    with session_scope(url) as session:
        job = find_by_idempotency_key(session, owner, key)
        if job is None:
            return None
        check_same_body(key, job.request_hash, fingerprint, job.id)
        return job.id, job.status


def _release(state: AppState, reservation: Reservation) -> None:
    try:
        reservation.release(state.redis)
    except redis.RedisError as error:  # it expires on its own
        log.warning("could not release an admission reservation: %s", error)
