"""The one Celery task: score a job chunk through the shared batcher and store it exactly once.

The task body only moves data: claim (store) -> encode (model tokenizer, this thread) ->
batcher (model thread) -> save (store). Failures that may pass (deadline, model error,
database down) re-publish the chunk with a short countdown; the attempt counter in the
store bounds how often.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Optional

from celery import Celery, Task
from sqlalchemy.exc import OperationalError

from core import done_payload
from core.redis_keys import JOBS_DONE_CHANNEL, cancelled_key
from models.base import Pair
from rerankq.schemas import FINISHED_STATUSES
from models.long_documents import max_per_document, split_documents
from store.claim_lease import ChunkBusy, claim_lease_s
from store.db import session_scope
from store.packed_scores import pack, unpack
from store.tables import Job
from store.work import ChunkWork, ScoreMeta, claim_chunk, fail_job, record_error, save_scores
from workers.metrics import (ATTEMPTS_EXHAUSTED, DB_UNAVAILABLE, DEADLINE, MODEL_ERROR, count_failure, count_flagged,
                             observe_queue_wait)
from core.queue import INTERACTIVE, PUBLISHED_AT, SHADOW_LANE, TASK_SCORE_CHUNK, TASK_SCORE_CHUNKS, publish_chunks
from workers.db_retry import with_db_retry
from workers.fallback import hand_over, is_fallback
from workers.grouped_store import claim_grouped, save_grouped
from workers.runtime import WorkerRuntime, get_runtime
from workers.score_cache import score_with_cache
from workers.retention_sweep import hash_texts_now
from workers.webhooks import deliver_later

log = logging.getLogger(__name__)
FINISHED = FINISHED_STATUSES


class ChunkDeadline(Exception):
    """The chunk did not get its scores within RERANKQ_CHUNK_DEADLINE_S."""


class JobCancelled(Exception):
    pass


def register(app: Celery) -> Task:
    @app.task(name=TASK_SCORE_CHUNK, bind=True, acks_late=True, max_retries=None)
    def score_chunk(self: Task, job_id: str, chunk_idx: int) -> None:
        runtime = get_runtime()
        observe_queue_wait(getattr(self.request, PUBLISHED_AT, None))
        try:
            run_chunk(runtime, job_id, chunk_idx, priority=lane_priority(_lane(self)))
        except RetryChunk as retry:
            raise self.retry(countdown=retry.countdown, exc=retry.cause)

    @app.task(name=TASK_SCORE_CHUNKS, bind=True, acks_late=True)
    def score_chunks(self: Task, chunks: list[list]) -> None:
        from workers.chunk_group import run_chunk_group

        runtime, lane = get_runtime(), _lane(self)

        def retry_later(job_id: str, chunk_idx: int, countdown: float) -> None:
            publish_chunks(self.app, job_id, [chunk_idx], lane, countdown=countdown)

        run_chunk_group(runtime, [(str(job_id), int(chunk_idx)) for job_id, chunk_idx in chunks],
                        lane_priority(lane), retry_later, getattr(self.request, PUBLISHED_AT, None))

    return score_chunk


def _lane(task: Task) -> str:
    """The queue the message came from (each queue's routing key is its name: core/queue.py)."""
    return (task.request.delivery_info or {}).get("routing_key", "")


def lane_priority(lane: str) -> int:
    """Interactive pairs first in the batcher; shadow work waits behind every real pair and raises no
    review cases."""
    return 0 if lane.endswith(INTERACTIVE) else 2 if lane.endswith(SHADOW_LANE) else 1


class RetryChunk(Exception):
    def __init__(self, cause: Exception, countdown: float = 1.0) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.countdown = countdown


def run_chunk(runtime: WorkerRuntime, job_id: str, chunk_idx: int, priority: int = 1) -> None:
    settings = runtime.settings
    url = settings.database_url
    try:
        work = with_db_retry(lambda: _claim(url, job_id, chunk_idx, settings.max_attempts,
                                            claim_lease_s(settings.chunk_deadline_s), settings.store_group_commit))
    except ChunkBusy as busy:  # a copy of a message whose chunk another delivery is working on
        log.info("%s", busy)
        raise RetryChunk(busy, countdown=busy.retry_in_s) from busy
    except OperationalError as error:
        count_failure(DB_UNAVAILABLE)
        raise RetryChunk(error, countdown=5.0) from error
    if work is None:
        notify_if_finished(runtime, job_id)
        return
    try:
        scores = score_work(runtime, work, priority)
    except JobCancelled:
        log.info("job %s cancelled; chunk %d dropped", job_id, chunk_idx)
        return
    except (ChunkDeadline, Exception) as error:  # noqa: BLE001 - every model failure is bounded below
        count_failure(DEADLINE if isinstance(error, ChunkDeadline) else MODEL_ERROR)
        _handle_failure(runtime, work, error)
        return
    meta = score_meta(runtime, work)
    try:
        finished = with_db_retry(lambda: _save(url, work, scores, meta, runtime, flag=priority < 2))
    except OperationalError as error:
        count_failure(DB_UNAVAILABLE)
        raise RetryChunk(error, countdown=5.0) from error
    if finished:
        notify(runtime, job_id, answer_payload(work, scores, meta))


def _claim(url: str, job_id: str, chunk_idx: int, max_attempts: int, lease_s: float, grouped: bool = False):
    if grouped:
        return claim_grouped(url, job_id, chunk_idx, max_attempts, lease_s)
    with session_scope(url) as session:
        return claim_chunk(session, job_id, chunk_idx, max_attempts, lease_s)


def _save(url: str, work: ChunkWork, scores: list[float], meta: ScoreMeta, runtime: WorkerRuntime,
          flag: bool = True) -> bool:
    checked: list[list[str]] = []  # reasons per request the rules looked at, counted once committed

    def rule(values):
        reasons = runtime.rules.reasons(values) if flag else []
        checked.append(reasons)
        return reasons

    if runtime.settings.store_group_commit:
        finished = save_grouped(url, work, scores, meta, rule)
    else:
        with session_scope(url) as session:
            finished = save_scores(session, work, scores, meta, rule)
    count_flagged(checked)
    return finished


def score_meta(runtime: WorkerRuntime, work: ChunkWork) -> ScoreMeta:
    """What is stored with the scores; a fallback worker's are degraded and carry its own model."""
    info, degraded = runtime.backend.info, is_fallback(runtime)
    instruction = work.instruction if work.instruction is not None else runtime.backend.default_instruction()
    return ScoreMeta(model=info.name if degraded else work.model, model_revision=info.revision,
                     score_type=info.score_type, instruction=None if degraded else instruction, degraded=degraded)


def score_work(runtime: WorkerRuntime, work: ChunkWork, priority: int) -> list[float]:
    """Cached pairs come from the score cache (when on); the rest are tokenized here, scored in
    the batcher thread, and waited for no longer than the chunk deadline."""
    pairs = [Pair(work.query, doc, work.instruction, work.max_tokens_per_doc) for doc in work.documents]
    return score_with_cache(runtime, pairs, lambda todo: _score_pairs(runtime, work, todo, priority))


def _score_pairs(runtime: WorkerRuntime, work: ChunkWork, pairs: list[Pair], priority: int) -> list[float]:
    """In chunk mode a long document is several window pairs; it keeps its best window's score."""
    windows, owners = split_documents(runtime.backend, pairs)
    encoded = runtime.backend.encode(windows)
    future = runtime.batcher.submit(encoded, priority=priority)
    scores = wait_for(future, runtime, work.job_id, runtime.settings.chunk_deadline_s)
    return max_per_document(scores, owners, len(pairs))


def wait_for(future: Future, runtime: WorkerRuntime, job_id: str, deadline_s: float) -> list[float]:
    deadline = time.monotonic() + deadline_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            future.cancel()
            raise ChunkDeadline(f"no scores within {deadline_s:.0f}s (RERANKQ_CHUNK_DEADLINE_S)")
        try:
            return future.result(timeout=min(1.0, remaining))
        except FutureTimeout:
            if runtime.redis.exists(cancelled_key(job_id)):
                future.cancel()
                raise JobCancelled(job_id)
        except CancelledError as error:
            raise JobCancelled(job_id) from error


def _handle_failure(runtime: WorkerRuntime, work: ChunkWork, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"
    url = runtime.settings.database_url
    if work.attempt < runtime.settings.max_attempts:
        log.warning("chunk %s:%d attempt %d failed (%s); retrying", work.job_id, work.chunk_idx, work.attempt, message)
        with_db_retry(lambda: _record(url, work, message))
        raise RetryChunk(error, countdown=1.0)
    log.error("chunk %s:%d failed after %d attempts: %s", work.job_id, work.chunk_idx, work.attempt, message)
    if hand_over(runtime, work, message):  # degraded fallback, when enabled and a fallback worker is live
        return
    count_failure(ATTEMPTS_EXHAUSTED)
    with_db_retry(lambda: _fail(url, work, message))
    notify(runtime, work.job_id)


def _record(url: str, work: ChunkWork, message: str) -> None:
    with session_scope(url) as session:
        record_error(session, work.job_id, work.chunk_idx, message)


def _fail(url: str, work: ChunkWork, message: str) -> None:
    with session_scope(url) as session:
        fail_job(session, work.job_id, work.chunk_idx,
                 f"chunk {work.chunk_idx} failed after {work.attempt} attempts: {message}")


def answer_payload(work: ChunkWork, scores: list[float], meta: ScoreMeta) -> Optional[str]:
    """The committed scores of the chunk that finished the job, for a waiting POST /v1/rerank
    (core/done_payload.py); None for a chunk that cannot be a whole answer alone. Only the save
    whose scores the (group) transaction stored reports a finished job (store/chunk_batch.py); they
    are handed on as stored, packed to float32, so the answer is the one the store gives."""
    if not done_payload.covers_a_request(work.request_idx, work.doc_start):
        return None
    return done_payload.encode(work.request_idx, work.doc_start, unpack(pack(scores)), meta.model,
                               meta.model_revision, meta.score_type, meta.instruction, meta.degraded)


def notify(runtime: WorkerRuntime, job_id: str, payload: Optional[str] = None) -> None:
    """Wake the API requests waiting on this job (api.job_waiters listens on the channel); a
    committed answer rides along as `payload` (core/done_payload.py)."""
    hash_texts_now(runtime, job_id)  # RERANKQ_KEEP_DOCUMENT_TEXT=false: no text outlives the job
    runtime.redis.publish(JOBS_DONE_CHANNEL, done_payload.notice(job_id, payload))
    deliver_later(runtime, job_id)  # the job's webhook, if it has one


def notify_if_finished(runtime: WorkerRuntime, job_id: str) -> None:
    with session_scope(runtime.settings.database_url) as session:
        job = session.get(Job, job_id)
        status = job.status if job else None
    if status in FINISHED:
        notify(runtime, job_id)
