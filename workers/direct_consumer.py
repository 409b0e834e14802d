"""The worker's own consumer of its model's direct list (core/direct_queue.py): the sync
endpoint's messages, taken without Celery.

One thread takes a message (one BLMOVE) whenever fewer than RERANKQ_WORKER_CONCURRENCY are
running, so a busy worker leaves the rest to other workers, as Celery's prefetch limit does. Each
message runs on a message thread exactly as Celery's `rerankq.score_chunks` task runs it
(workers/chunk_group.py) and then leaves the processing list (one LREM). A chunk that asks to be
retried later is re-published alone through Celery, with its countdown.

The same thread hands back, every RERANKQ_SWEEP_INTERVAL_S, the messages held by consumers whose
worker's heartbeat has expired (a crash), so they are delivered again within a few heartbeats.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from core import direct_queue
from core.queue import INTERACTIVE, publish_chunks
from core.worker_registry import live_workers
from workers.chunk_group import run_chunk_group
from workers.runtime import WorkerRuntime
from workers.tasks import lane_priority

log = logging.getLogger(__name__)

TAKE_TIMEOUT_S = 1.0  # how long one BLMOVE blocks: bounds how late a stop is noticed


class DirectConsumer:
    def __init__(self, runtime: WorkerRuntime, queue: str) -> None:
        self.runtime, self.queue = runtime, queue
        self._client = redis.Redis.from_url(runtime.settings.redis_url, health_check_interval=30)
        concurrency = runtime.settings.worker_concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        self._messages = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rerankq-direct")
        self._running = 0
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rerankq-direct-consumer", daemon=True)
        self.processing = direct_queue.processing_list(queue, runtime.hostname)
        self._next_restore = 0.0

    def start(self) -> None:
        # Anything already held under this name was taken by a worker of the same hostname that died
        # (a fixed --hostname, restarted): no thread here will run it, so it goes back first.
        if moved := direct_queue.restore(self._client, self.queue, self.processing):
            log.warning("handed back %d messages held by an earlier worker named %s", moved, self.runtime.hostname)
        direct_queue.register_consumer(self._client, self.queue, self.runtime.hostname)
        self._thread.start()
        log.info("taking sync messages from %s", direct_queue.direct_list(self.queue))

    def stop_taking(self) -> None:
        self._stop.set()

    def stop(self, timeout_s: float) -> bool:
        """Take nothing more and wait up to `timeout_s` for the messages running; True when all
        finished (the consumer then leaves the set). What is left stays in the processing list, for
        another worker to take back once this one's heartbeat is gone."""
        self._stop.set()
        self._thread.join(timeout=TAKE_TIMEOUT_S + 5)
        with self._idle:
            drained = self._idle.wait_for(lambda: self._running == 0, timeout=timeout_s)
        if drained:
            try:
                direct_queue.restore(self._client, self.queue, self.processing)  # empty: just leaves the set
            except redis.RedisError as error:
                log.warning("could not leave the direct consumers' set: %s", error)
        return drained

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._restore_dead_when_due()
            if not self._slots.acquire(timeout=TAKE_TIMEOUT_S):
                continue
            try:
                raw = None if self._stop.is_set() else direct_queue.take(self._client, self.queue, self.processing,
                                                                         TAKE_TIMEOUT_S)
            except redis.RedisError as error:
                log.warning("taking from %s failed (%s); retrying", direct_queue.direct_list(self.queue), error)
                raw = None
                self._stop.wait(1.0)
            if raw is None:
                self._slots.release()
                continue
            with self._idle:
                self._running += 1
            self._messages.submit(self._run, raw)

    def _run(self, raw: bytes) -> None:
        try:
            try:
                chunks, published_at = direct_queue.decode(raw)
            except ValueError as error:
                log.error("dropping an unreadable message from %s: %s", direct_queue.direct_list(self.queue), error)
                return
            run_chunk_group(self.runtime, chunks, lane_priority(INTERACTIVE), self._retry_later, published_at)
        except Exception as error:  # noqa: BLE001 - logged and done, as a failed Celery task is acked
            log.error("a direct message failed: %r", error)
        finally:
            self._finish(raw)

    def _finish(self, raw: bytes) -> None:
        try:
            _remove(self._client, self.processing, raw)
        except redis.RedisError as error:  # delivered again only if this worker dies: then a no-op
            log.warning("could not remove a finished message from %s: %s", self.processing, error)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()
            self._slots.release()

    def _retry_later(self, job_id: str, chunk_idx: int, countdown: float) -> None:
        publish_chunks(self.runtime.app, job_id, [chunk_idx], self.queue, countdown=countdown)

    def _restore_dead_when_due(self) -> None:
        now = time.monotonic()
        if now < self._next_restore:
            return
        self._next_restore = now + self.runtime.settings.sweep_interval_s
        try:
            live = [w.get("hostname", "") for w in live_workers(self._client)]
            moved = direct_queue.restore_dead(self._client, self.queue, live, self.runtime.hostname)
        except redis.RedisError as error:
            log.warning("could not check for dead consumers' messages: %s", error)
            return
        if moved:
            log.warning("handed back %d messages held by workers that stopped beating", moved)


@retry(retry=retry_if_exception_type(redis.RedisError), stop=stop_after_delay(30),
       wait=wait_exponential(multiplier=0.1, max=2), reraise=True)
def _remove(client: redis.Redis, processing: str, raw: bytes) -> None:
    direct_queue.done(client, processing, raw)
