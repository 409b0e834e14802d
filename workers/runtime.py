"""What one worker process holds for its whole life: the model, the batcher, the heartbeat,
the sweeper. Built once in Celery's `worker_init`, before the consumer takes any message."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Optional

import redis
from celery import Celery

from core.redis_keys import sweep_lost_lock_key
from core.settings import Settings
from models.base import ScoringBackend
from store.db import session_scope
from store.pending_work import iter_pending_chunks, published_pending_jobs, unpublished_jobs
from store.publish_claim import claim_publication, undo_publication
from store.tables import utcnow
from workers.batch_plan import max_tokens_for, overhead_tokens_for
from workers.batcher import Batcher, BatchStats
from workers.confidence import ConfidenceRules
from workers.faults import with_faults
from workers.heartbeat import Heartbeat
from core.queue import FALLBACK_LANE, messages_in_flight, model_key, publish_chunks, queue_name, worker_queues
from workers.retention_sweep import start_retention_sweeper
from workers.webhooks import sweep_callbacks

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    settings: Settings
    app: Celery
    backend: ScoringBackend
    batcher: Batcher
    redis: redis.Redis
    rules: ConfidenceRules
    hostname: str
    started_at: float = field(default_factory=time.time)
    heartbeat: Optional[Heartbeat] = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def status(self) -> dict:
        info = self.backend.info
        totals = self.batcher.totals
        return {
            "hostname": self.hostname,
            "model": self.settings.served_model,
            "model_revision": info.revision,
            "backend": info.backend,
            "score_type": info.score_type,
            "device": info.device,
            "dtype": info.dtype,
            "ready": True,
            "batches": totals.batches,
            "pairs": totals.pairs,
            "real_tokens": totals.real_tokens,
            "padded_tokens": totals.padded_tokens,
            "queue_wait_s": round(totals.queue_wait_s, 6),
            "waits": totals.waits,
            "waited_s": round(totals.waited_s, 6),
            "started_at": self.started_at,
        }

    def start(self) -> None:
        self.batcher.start()
        self.heartbeat = Heartbeat(self.redis, self.hostname, self.settings.heartbeat_interval_s, self.status)
        self.heartbeat.start()
        threading.Thread(target=self._sweep_loop, name="rerankq-sweeper", daemon=True).start()
        start_retention_sweeper(self)

    def stop(self) -> None:
        self._stop.set()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.batcher.stop()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            for sweep in (self.sweep_unpublished, self.sweep_lost, lambda: sweep_callbacks(self)):
                try:
                    sweep()
                except Exception as error:  # noqa: BLE001 - the sweeper must outlive a bad minute
                    log.warning("sweep failed: %s", error)

    def sweep_unpublished(self) -> int:
        """Publish jobs the API accepted but never handed to the broker. Each job is marked published
        before it is published, conditionally, so of several sweeping workers only one publishes it."""
        cutoff = utcnow() - timedelta(seconds=self.settings.publish_grace_s)
        with session_scope(self.settings.database_url) as session:
            jobs = unpublished_jobs(session, cutoff)
        published = 0
        for job_id, queue in jobs.items():
            with session_scope(self.settings.database_url) as session:
                if not claim_publication(session, job_id):
                    continue  # another sweeper (or the API, late) has it
            chunk_count = 0
            try:
                for chunks in iter_pending_chunks(self.settings.database_url, job_id):
                    publish_chunks(self.app, job_id, chunks, queue)
                    chunk_count += len(chunks)
            except Exception:
                with session_scope(self.settings.database_url) as session:
                    undo_publication(session, job_id)
                raise
            published += 1
            log.warning("re-published job %s (%d chunks) that was never published", job_id, chunk_count)
        return published

    def sweep_lost(self) -> int:
        """Publish again the pending chunks of published jobs when the broker holds no message at
        all for this model (its queues are empty and no unacked message was routed to them, whatever
        other models' messages are in flight): their messages
        were lost, e.g. by a Redis that restarted without its append-only file or a failover to a
        replica that lagged. Duplicates are harmless; one worker per model sweeps at a time."""
        settings = self.settings
        model = settings.served_model
        queues = [*worker_queues(model), queue_name(model, FALLBACK_LANE)]  # shadow copies are swept too
        if messages_in_flight(self.redis, queues):
            return 0
        if not self.redis.set(sweep_lost_lock_key(model_key(model)), self.hostname, nx=True,
                              ex=max(1, int(settings.sweep_interval_s))):
            return 0
        cutoff = utcnow() - timedelta(seconds=settings.publish_grace_s)
        with session_scope(settings.database_url) as session:
            lost = published_pending_jobs(session, worker_queues(model), cutoff)
        for job_id, queue in lost.items():
            for chunks in iter_pending_chunks(settings.database_url, job_id):
                publish_chunks(self.app, job_id, chunks, queue)
                log.warning("re-published %d chunks of job %s: the broker held no message for them", len(chunks),
                            job_id)
        return len(lost)


_runtime: Optional[WorkerRuntime] = None


def get_runtime() -> WorkerRuntime:
    if _runtime is None:
        raise RuntimeError("worker runtime not initialised: the model loads in worker_init")
    return _runtime


def build_runtime(settings: Settings, app: Celery, on_batch=None, hostname: Optional[str] = None, *,
                  load: Optional[Callable[[Settings], ScoringBackend]] = None,
                  runtime_cls: type[WorkerRuntime] = WorkerRuntime) -> WorkerRuntime:
    """Load and warm the model, then start the batcher and heartbeat (readiness means warm).
    `load` and `runtime_cls` let the degraded-fallback worker (workers/fallback.py) reuse this."""
    global _runtime
    from models.loading import load_backend

    started = time.monotonic()
    threads = model_threads(settings)
    backend = with_faults((load or load_backend)(settings), settings)
    batcher = Batcher(
        backend.score_encoded,
        max_tokens=max_tokens_for(settings.max_batch_tokens, backend.info.device),
        max_pairs=settings.max_batch_pairs,
        max_wait_s=settings.max_batch_wait_ms / 1000.0,
        step_timeout_s=settings.step_timeout_s,
        on_batch=on_batch,
        share_prefix=getattr(backend, "shares_prefix", False),
        overhead_tokens=overhead_tokens_for(settings.batch_overhead_tokens, backend.info.device),
        on_start=lambda: warm_up_model_thread(backend, threads),
    )
    runtime = runtime_cls(
        settings=settings,
        app=app,
        backend=backend,
        batcher=batcher,
        redis=redis.Redis.from_url(settings.redis_url),
        rules=ConfidenceRules.from_settings(settings),
        hostname=hostname or f"{socket.gethostname()}-{os.getpid()}",
    )
    runtime.start()
    log.info("model %s loaded and warmed in %.1fs on %s/%s (%d CPU threads)", backend.info.name,
             time.monotonic() - started, backend.info.device, backend.info.dtype, threads)
    _runtime = runtime
    return runtime


def model_threads(settings: Settings) -> int:
    """The model's CPU threads; the calling (main) thread itself goes single-threaded.

    Only the batcher thread runs the model. libgomp spins only briefly when it manages more
    threads than there are cores, so a second OpenMP team (the main thread's, from loading)
    makes every parallel op of the batcher's wait for a futex wake-up: measured on 2 cores,
    ~70 us instead of ~10 us per small op and forward passes ~50% slower."""
    import torch

    threads = settings.torch_threads or torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


def warm_up_model_thread(backend: ScoringBackend, threads: int) -> None:
    """In the batcher thread, before it takes work: its thread count, then one warm-up pass."""
    import torch

    torch.set_num_threads(threads)
    backend.score([_warmup_pair()])


def _warmup_pair():
    from models.base import Pair

    return Pair(query="warm-up", document="warm-up document")


def log_batch(stats: BatchStats) -> None:
    log.debug("batch pairs=%d groups=%d tokens=%d/%d wait=%.1fms infer=%.1fms", stats.pairs, stats.groups,
              stats.real_tokens, stats.padded_tokens, stats.queue_wait_s * 1e3, stats.inference_s * 1e3)
