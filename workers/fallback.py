"""Degraded fallback (off by default): score with an embedding model when no reranker can.

`rerankq worker --fallback` loads RERANKQ_FALLBACK_MODEL behind models.embedding and consumes its
own queue, `rerankq.<model>.fallback`. Work reaches that queue in two ways:

* its sweeper: while no reranker worker for the model has had a live heartbeat for
  RERANKQ_FALLBACK_AFTER_S, the pending chunks of jobs older than that are published to it;
* a reranker worker whose chunk fails its last attempt hands the chunk over instead of failing
  the job, when fallback is enabled and a fallback worker is live (otherwise the job fails).

Never silent: every score it writes has `degraded=True`, the embedding model's name and the score
type "cosine-similarity (degraded fallback)", and every result set holding one says so in its meta.
A reranker worker that comes back takes whatever is still pending.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional, cast

import redis

from core import worker_registry as registry
from core.redis_keys import PREFIX
from core.settings import Settings
from store.db import session_scope
from store.fallback import stranded_jobs
from store.pending_work import iter_pending_chunks
from store.tables import utcnow
from store.work import ChunkWork, record_error
from core.queue import FALLBACK_LANE, publish_chunks, queue_name
from workers.runtime import WorkerRuntime, build_runtime

log = logging.getLogger(__name__)


def fallback_queue(model: str) -> str:
    return queue_name(model, FALLBACK_LANE)


def rerouted_key(job_id: str) -> str:
    return f"{PREFIX}:fallback:{job_id}"


def is_fallback(runtime: WorkerRuntime) -> bool:
    return isinstance(runtime, FallbackRuntime)


def live_workers(client: redis.Redis, model: str) -> tuple[bool, bool]:
    """(a reranker worker for `model` is live, a fallback worker for it is live)."""
    primary = fallback = False
    for beat in registry.live_workers(client):
        if beat.get("model") == model and beat.get("ready"):
            if beat.get("fallback"):
                fallback = True
            else:
                primary = True
    return primary, fallback


@dataclass
class FallbackRuntime(WorkerRuntime):
    """A worker runtime whose heartbeat says `fallback` and which re-routes stranded jobs to itself."""

    last_primary_seen: float = field(default_factory=time.time)  # the deadline starts when we do

    def status(self) -> dict:
        return {**super().status(), "fallback": True, "fallback_model": self.settings.fallback_model}

    def start(self) -> None:
        super().start()
        threading.Thread(target=self._reroute_loop, name="rerankq-fallback-sweeper", daemon=True).start()

    def _reroute_loop(self) -> None:
        period = max(0.5, min(self.settings.sweep_interval_s, self.settings.fallback_after_s / 2))
        while not self._stop.wait(period):
            try:
                reroute_stranded(self)
            except Exception as error:  # noqa: BLE001 - keep sweeping through a bad minute
                log.warning("fallback sweep failed: %s", error)


def reroute_stranded(runtime: FallbackRuntime) -> int:
    """Take the pending chunks of old jobs while no reranker worker has been live for the deadline."""
    settings = runtime.settings
    model = settings.served_model
    primary, _fallback = live_workers(runtime.redis, model)
    now = time.time()
    if primary:
        runtime.last_primary_seen = now
        return 0
    if now - runtime.last_primary_seen < settings.fallback_after_s:
        return 0
    cutoff = utcnow() - timedelta(seconds=settings.fallback_after_s)
    with session_scope(settings.database_url) as session:
        stranded = stranded_jobs(session, model, cutoff)
    taken = 0
    for job_id in stranded:
        if not runtime.redis.set(rerouted_key(job_id), "1", nx=True, ex=settings.visibility_timeout_s):
            continue
        moved = 0
        for chunks in iter_pending_chunks(settings.database_url, job_id):
            publish_chunks(runtime.app, job_id, chunks, fallback_queue(model))
            moved += len(chunks)
        log.warning("DEGRADED: no reranker worker for %s has been live for %.0fs; job %s (%d chunks) goes to "
                    "the fallback %s", model, now - runtime.last_primary_seen, job_id, moved,
                    settings.fallback_model)
        taken += 1
    return taken


def hand_over(runtime: WorkerRuntime, work: ChunkWork, message: str) -> bool:
    """A reranker's chunk failed its last attempt: give it to a live fallback worker instead of
    failing the job. False (the job fails as before) when fallback is off or none is live."""
    settings = runtime.settings
    if not settings.fallback_enabled or is_fallback(runtime):
        return False
    try:
        if not live_workers(runtime.redis, work.model)[1]:
            return False
        with session_scope(settings.database_url) as session:
            record_error(session, work.job_id, work.chunk_idx, message)
        publish_chunks(runtime.app, work.job_id, [work.chunk_idx], fallback_queue(work.model))
    except Exception as error:  # noqa: BLE001 - when handing over fails, failing the job is the honest answer
        log.warning("could not hand chunk %s:%d to the fallback: %s", work.job_id, work.chunk_idx, error)
        return False
    log.warning("DEGRADED: chunk %s:%d failed on the reranker (%s); handed to the fallback worker",
                work.job_id, work.chunk_idx, message)
    return True


def build_fallback_runtime(settings: Settings, app, on_batch=None, hostname: Optional[str] = None) -> FallbackRuntime:
    from models.embedding import load_embedding_backend

    runtime = build_runtime(settings, app, on_batch=on_batch, hostname=hostname, load=load_embedding_backend,
                            runtime_cls=FallbackRuntime)
    return cast(FallbackRuntime, runtime)


def run_fallback_worker(settings: Settings, hostname: Optional[str] = None, loglevel: str = "INFO") -> None:
    """Start a fallback worker. A chunk handed over has used the reranker's attempts already, so
    this worker allows as many again."""
    from workers.main import run_worker

    if not settings.fallback_enabled or not settings.fallback_model:
        raise SystemExit("a fallback worker needs RERANKQ_FALLBACK_ENABLED=true and RERANKQ_FALLBACK_MODEL")
    settings = settings.model_copy(update={"max_attempts": settings.max_attempts * 2})
    run_worker(settings, hostname=hostname, loglevel=loglevel, queues=[fallback_queue(settings.served_model)],
               build=build_fallback_runtime)
