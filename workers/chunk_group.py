"""A message that carries several small jobs' chunks (core/queue.py, `rerankq.score_chunks`): each
chunk runs exactly as a message of its own would (claim, score, save, notify: workers/tasks.py),
side by side on this process's chunk threads, so their pairs meet in one forward pass and their
claims and saves in one group transaction.

The message is acked once every chunk has run. A chunk that asks to be retried later is
re-published alone with its countdown; the others are done. If the worker dies first, the whole
message comes back, and the store's unique keys make the chunks already saved no-ops.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Sequence

from workers.metrics import observe_queue_wait
from workers.runtime import WorkerRuntime
from workers.tasks import RetryChunk, run_chunk

log = logging.getLogger(__name__)

CHUNK_THREADS = 64  # a bound, not a target: chunks of queued messages wait here, not on the model

_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()

RetryLater = Callable[[str, int, float], None]  # (job_id, chunk_idx, countdown_s)


def _chunk_threads() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=CHUNK_THREADS, thread_name_prefix="rerankq-chunk")
        return _pool


def run_chunk_group(runtime: WorkerRuntime, chunks: Sequence[tuple[str, int]], priority: int,
                    retry_later: RetryLater, published_at: Optional[float] = None) -> None:
    """Run every chunk (each counted in the queue-wait histogram from the message's `published_at`);
    re-publish alone those that must be retried; then raise the first other error."""
    for _chunk in chunks:
        observe_queue_wait(published_at)
    pool = _chunk_threads()
    futures = [pool.submit(run_chunk, runtime, job_id, chunk_idx, priority) for job_id, chunk_idx in chunks]
    unexpected: Optional[BaseException] = None
    for (job_id, chunk_idx), future in zip(chunks, futures):
        error = future.exception()
        if isinstance(error, RetryChunk):
            retry_later(job_id, chunk_idx, error.countdown)
        elif error is not None:
            log.error("chunk %s:%d of a grouped message failed: %r", job_id, chunk_idx, error)
            unexpected = unexpected or error
    if unexpected is not None:
        raise unexpected
