"""The worker's retention sweeper: deletes what RERANKQ_RETENTION_DAYS / RERANKQ_CASE_RETENTION_DAYS say has
expired, and (RERANKQ_KEEP_DOCUMENT_TEXT=false) hashes the texts of finished jobs.

It runs on its own thread, so a long first pass over an old store never delays the publish sweeps.
One worker sweeps at a time (a Redis lock, renewed after every batch); each batch is one short
transaction and the sweeper pauses as long as the batch took before the next, so the hot path's
writers get at least half of the database's time.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from redis.exceptions import LockError

from core.redis_keys import RETENTION_SWEEP_LOCK
from store.db import session_scope
from store.document_text import hash_job_texts, unhashed_finished_jobs
from store.retention_pass import RetentionPolicy, run_pass
from store.group_commit import committer

log = logging.getLogger(__name__)
LOCK_KEY = RETENTION_SWEEP_LOCK
LOCK_S = 120


def start_retention_sweeper(runtime) -> threading.Thread:
    thread = threading.Thread(target=_loop, args=(runtime,), name="rerankq-retention", daemon=True)
    thread.start()
    return thread


def _loop(runtime) -> None:
    while not runtime._stop.wait(runtime.settings.sweep_interval_s):
        try:
            sweep_retention(runtime)
        except Exception as error:  # noqa: BLE001 - the sweeper must outlive a bad minute
            log.warning("retention sweep failed: %s", error)


def sweep_retention(runtime) -> bool:
    """One pass, if no other worker is sweeping; True when this worker swept."""
    settings = runtime.settings
    lock = runtime.redis.lock(LOCK_KEY, timeout=LOCK_S, blocking=False)
    if not lock.acquire(blocking=False):
        return False
    try:
        if not settings.keep_document_text:
            _hash_finished(settings, runtime._stop)
        paced = _Pacer(lock, runtime._stop)
        report = run_pass(settings.database_url, RetentionPolicy.from_settings(settings), between_batches=paced)
        if report.jobs or report.cases or report.markers:
            log.info("retention: %s", "; ".join(report.lines()))
        return True
    finally:
        try:
            lock.release()
        except LockError:
            pass  # it expired meanwhile; another worker may hold it now


class _Pacer:
    """Between batches: renew the lock, then rest as long as the last batch took (stop when asked)."""

    def __init__(self, lock, stop: threading.Event) -> None:
        self.lock, self.stop, self.last = lock, stop, time.monotonic()

    def __call__(self) -> bool:
        took = time.monotonic() - self.last
        try:
            self.lock.reacquire()
        except (LockError, redis.RedisError):
            return False  # lost the lock: another worker carries on
        if self.stop.wait(min(max(took, 0.01), 1.0)):
            return False
        self.last = time.monotonic()
        return True


def _hash_finished(settings, stop: threading.Event) -> None:
    while not stop.is_set():
        with session_scope(settings.database_url) as session:
            job_ids = unhashed_finished_jobs(session, settings.retention_batch)
            if not job_ids:
                return
            hash_job_texts(session, job_ids)


def hash_texts_now(runtime, job_id: str) -> None:
    """Hook for a finished job: with RERANKQ_KEEP_DOCUMENT_TEXT=false, hash its texts before anyone is told.

    With RERANKQ_STORE_GROUP_COMMIT the hashing goes through the process's group committer, as the
    saves do: the jobs finished by one forward pass are hashed in one transaction, by the one thread
    that writes for this process. A failure is logged, not raised: the waiting clients are still told,
    and the retention sweeper hashes what was missed."""
    settings = runtime.settings
    if settings.keep_document_text:
        return
    try:
        if settings.store_group_commit:
            committer(settings.database_url).run(_hash_group, job_id)
        else:
            with session_scope(settings.database_url) as session:
                hash_job_texts(session, [job_id])
    except Exception as error:  # noqa: BLE001 - the sweeper hashes it later
        log.warning("hashing the texts of job %s failed (%s); the retention sweeper will", job_id, error)


def _hash_group(session, job_ids) -> list[None]:
    hash_job_texts(session, list(job_ids))
    return [None] * len(job_ids)
