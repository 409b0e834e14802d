"""Webhook delivery: when a job with a callback_url finishes, POST its signed summary there.

Delivery runs on a background thread (the task that finished the job is not held), retries with
exponential backoff up to RERANKQ_WEBHOOK_MAX_ATTEMPTS, and records every attempt on the job, so
GET /v1/jobs/{id} shows it. A Redis lease keeps two threads (or workers) from delivering one job
at once; the worker's sweeper picks up deliveries a dead worker left, and cancelled jobs. Delivery
is at least once: receivers should de-duplicate on the job id.

The URL is checked against the allow-list again before every attempt, its host is resolved and
refused when it points inside the network (unless RERANKQ_WEBHOOK_ALLOW_PRIVATE), the POST goes to
the address that was checked (no second lookup, no HTTP(S)_PROXY, which would look it up again),
and redirects are never followed: a delivery cannot be steered anywhere the checks did not pass.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Optional

import httpx
import redis

from core.callback_addresses import pin, resolve_host
from core.redis_keys import callback_lease_key
from core.settings import Settings
from core.webhooks import callback_url_problem, host_and_port, parse_allowed_hosts, sign
from store.callbacks import CallbackTarget, callback_target, pending_callbacks, record_attempt
from store.db import session_scope

log = logging.getLogger(__name__)
MAX_PAUSE_S = 600.0


def webhooks_enabled(settings: Settings) -> bool:
    return bool(parse_allowed_hosts(settings.webhook_allowed_hosts) and settings.webhook_secret)


def deliver_later(runtime, job_id: str) -> None:
    """Hook for a finished job: deliver its webhook (if it has one) on a background thread."""
    if webhooks_enabled(runtime.settings):
        threading.Thread(target=_deliver_logged, args=(runtime.settings, runtime.redis, job_id),
                         name=f"rerankq-webhook-{job_id[:8]}", daemon=True).start()


def _deliver_logged(settings: Settings, client: redis.Redis, job_id: str) -> None:
    try:
        deliver(settings, client, job_id)
    except Exception as error:  # noqa: BLE001 - the status stays pending; the sweeper tries again
        log.warning("webhook delivery for job %s interrupted: %s", job_id, error)


def sweep_callbacks(runtime) -> int:
    """Start delivery of every finished job whose webhook is still pending; returns how many."""
    if not webhooks_enabled(runtime.settings):
        return 0
    with session_scope(runtime.settings.database_url) as session:
        job_ids = pending_callbacks(session)
    for job_id in job_ids:
        deliver_later(runtime, job_id)
    return len(job_ids)


def deliver(settings: Settings, client: redis.Redis, job_id: str) -> Optional[str]:
    """Deliver until success or the attempt budget is spent; returns the final status (None: nothing
    to do here, because another thread holds the lease or nothing is owed)."""
    with session_scope(settings.database_url) as session:
        if callback_target(session, job_id) is None:  # most finished jobs have no webhook
            return None
    lease, token = callback_lease_key(job_id), uuid.uuid4().hex
    if not client.set(lease, token, nx=True, ex=_lease_s(settings, 0)):
        return None
    try:
        while True:
            with session_scope(settings.database_url) as session:
                target = callback_target(session, job_id)
            if target is None:
                return None
            error, final = post_summary(settings, target)
            give_up = final or (error is not None and target.attempts + 1 >= settings.webhook_max_attempts)
            with session_scope(settings.database_url) as session:
                status = record_attempt(session, job_id, error, give_up)
            if error is None or give_up:
                log.log(logging.INFO if error is None else logging.WARNING, "webhook for job %s %s after %d "
                        "attempt(s)%s", job_id, status, target.attempts + 1, f": {error}" if error else "")
                return status
            pause = min(settings.webhook_backoff_s * 2 ** target.attempts, MAX_PAUSE_S)
            log.info("webhook for job %s failed (%s); retrying in %.1fs", job_id, error, pause)
            client.set(lease, token, xx=True, ex=_lease_s(settings, pause))
            time.sleep(pause)
    finally:
        if client.get(lease) == token.encode():
            client.delete(lease)


def _lease_s(settings: Settings, pause: float) -> int:
    return int(pause + settings.webhook_timeout_s + 30)


def summary(settings: Settings, target: CallbackTarget) -> dict:
    path = f"/v1/jobs/{target.job_id}"
    return {
        "id": target.job_id,
        "status": target.status,
        "created_at": target.created_at.isoformat(),
        "finished_at": target.finished_at.isoformat() if target.finished_at else None,
        "error": target.error,
        "results_url": settings.public_url.rstrip("/") + path if settings.public_url else path,
    }


def post_summary(settings: Settings, target: CallbackTarget) -> tuple[Optional[str], bool]:
    """One signed POST; returns (error or None, whether retrying is pointless)."""
    problem = callback_url_problem(target.url, settings.webhook_allowed_hosts)
    if problem:
        return f"not delivered: callback_url {problem}", True
    resolution = resolve_host(*host_and_port(target.url), allow_private=settings.webhook_allow_private)
    if resolution.problem:
        # An internal address will not stop being one; a name that does not resolve may yet.
        return f"not delivered: callback_url {resolution.problem}", bool(resolution.addresses)
    pinned = pin(target.url, resolution.addresses[0])
    body = json.dumps(summary(settings, target), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "rerankq-webhooks",
               **sign(settings.webhook_secret, body), **pinned.headers}
    try:
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=settings.webhook_timeout_s) as http:
            response = http.post(pinned.url, content=body, headers=headers, extensions=pinned.extensions)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}", False
    if response.is_success:
        return None, False
    note = " (redirects are not followed)" if response.is_redirect else ""
    return f"HTTP {response.status_code}{note}", False
