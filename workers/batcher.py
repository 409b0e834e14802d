"""One thread per worker process owns the model and scores pairs from every running chunk together.

Task threads submit encoded pairs and wait on a Future. The batcher takes the highest-priority
lane, sorts its pairs by length and cuts batches under a padded-token budget and a pair cap, so
short pairs never pay for long ones. A failing batch is split in halves until the failing pair
is alone: out-of-memory on a large batch becomes two smaller batches, and a poison pair fails
only its own chunk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from models.base import Encoded

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Group:
    """One submission (a chunk's pairs): its future resolves when every pair has a score."""

    future: Future
    scores: list[Optional[float]]
    remaining: int
    is_cancelled: Callable[[], bool]


@dataclass(eq=False)
class _Item:
    group: _Group
    index: int
    encoded: Encoded
    priority: int
    enqueued_at: float

    @property
    def length(self) -> int:
        return self.encoded.length


@dataclass(frozen=True)
class BatchStats:
    pairs: int
    real_tokens: int
    padded_tokens: int
    queue_wait_s: float
    inference_s: float
    groups: int


@dataclass
class BatcherTotals:
    batches: int = 0
    pairs: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    failures: int = 0
    splits: int = 0


def form_batches(items: Sequence[_Item], max_tokens: int, max_pairs: int) -> list[list[_Item]]:
    """Greedy cut of length-sorted items: each batch's longest x count stays within the budget."""
    batches: list[list[_Item]] = []
    current: list[_Item] = []
    for item in sorted(items, key=lambda i: i.length):
        cost = item.length * (len(current) + 1)
        if current and (cost > max_tokens or len(current) >= max_pairs):
            batches.append(current)
            current = []
        current.append(item)
    if current:
        batches.append(current)
    return batches


class Batcher:
    def __init__(
        self,
        score_fn: Callable[[Sequence[Encoded]], list[float]],
        *,
        max_tokens: int,
        max_pairs: int,
        max_wait_s: float,
        step_timeout_s: float = 0.0,
        on_batch: Optional[Callable[[BatchStats], None]] = None,
    ) -> None:
        self._score_fn = score_fn
        self._max_tokens = max_tokens
        self._max_pairs = max_pairs
        self._max_wait_s = max_wait_s
        self._step_timeout_s = step_timeout_s
        self._on_batch = on_batch
        self._pending: list[_Item] = []
        self._cond = threading.Condition()
        self._running = False
        self._step_started: Optional[float] = None
        self.totals = BatcherTotals()
        self._threads: list[threading.Thread] = []

    # --- public -------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._threads = [threading.Thread(target=self._loop, name="rerankq-batcher", daemon=True)]
        if self._step_timeout_s > 0:
            self._threads.append(threading.Thread(target=self._watchdog, name="rerankq-watchdog", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def submit(
        self, encoded: Sequence[Encoded], priority: int = 1, is_cancelled: Callable[[], bool] = lambda: False
    ) -> Future:
        """Queue pairs for scoring; lower priority numbers are served first."""
        future: Future = Future()
        if not encoded:
            future.set_result([])
            return future
        group = _Group(future, [None] * len(encoded), len(encoded), is_cancelled)
        now = time.monotonic()
        items = [_Item(group, i, e, priority, now) for i, e in enumerate(encoded)]
        with self._cond:
            self._pending.extend(items)
            self._cond.notify()
        return future

    def pending_pairs(self) -> int:
        with self._cond:
            return len(self._pending)

    # --- the loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> Optional[list[_Item]]:
        with self._cond:
            while self._running and not self._pending:
                self._cond.wait()
            if not self._running:
                return None
            self._wait_for_more()
            self._pending = [i for i in self._pending if not self._drop_if_cancelled(i)]
            if not self._pending:
                return []
            top = min(i.priority for i in self._pending)
            lane = [i for i in self._pending if i.priority == top]
            oldest = min(lane, key=lambda i: i.enqueued_at)
            batch = next(b for b in form_batches(lane, self._max_tokens, self._max_pairs) if oldest in b)
            taken = set(map(id, batch))
            self._pending = [i for i in self._pending if id(i) not in taken]
            return batch

    def _wait_for_more(self) -> None:
        """Wait briefly for company only when the queue is thin; a full queue goes at once."""
        deadline = time.monotonic() + self._max_wait_s
        while self._running:
            longest = max(i.length for i in self._pending)
            if len(self._pending) >= self._max_pairs or longest * len(self._pending) >= self._max_tokens:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    @staticmethod
    def _drop_if_cancelled(item: _Item) -> bool:
        group = item.group
        if group.future.done():
            return True
        if group.is_cancelled():
            group.future.cancel()
            return True
        return False

    def _run(self, batch: list[_Item]) -> None:
        batch = [i for i in batch if not i.group.future.done()]
        if not batch:
            return
        started = time.monotonic()
        self._step_started = started
        try:
            scores = self._score_fn([i.encoded for i in batch])
        except Exception as error:  # noqa: BLE001 - any model error is handled by splitting
            self._step_started = None
            self._handle_failure(batch, error)
            return
        self._step_started = None
        finished = time.monotonic()
        for item, score in zip(batch, scores):
            self._deliver(item, score)
        self._record(batch, started, finished)

    def _handle_failure(self, batch: list[_Item], error: Exception) -> None:
        if len(batch) > 1:
            self.totals.splits += 1
            log.warning("batch of %d pairs failed (%s); retrying in halves", len(batch), error)
            middle = len(batch) // 2
            self._run(batch[:middle])
            self._run(batch[middle:])
            return
        self.totals.failures += 1
        future = batch[0].group.future
        if not future.done():
            future.set_exception(error)

    @staticmethod
    def _deliver(item: _Item, score: float) -> None:
        group = item.group
        if group.future.done():
            return
        group.scores[item.index] = float(score)
        group.remaining -= 1
        if group.remaining == 0:
            group.future.set_result(group.scores)

    def _record(self, batch: list[_Item], started: float, finished: float) -> None:
        real = sum(i.length for i in batch)
        padded = max(i.length for i in batch) * len(batch)
        totals = self.totals
        totals.batches += 1
        totals.pairs += len(batch)
        totals.real_tokens += real
        totals.padded_tokens += padded
        if self._on_batch is not None:
            wait = sum(started - i.enqueued_at for i in batch) / len(batch)
            stats = BatchStats(len(batch), real, padded, wait, finished - started, len({id(i.group) for i in batch}))
            self._on_batch(stats)

    def _watchdog(self) -> None:
        """A forward pass that never returns cannot be interrupted; end the process so the
        broker redelivers its chunks to a healthy worker."""
        while self._running:
            time.sleep(min(1.0, self._step_timeout_s / 4))
            started = self._step_started
            if started is not None and time.monotonic() - started > self._step_timeout_s:
                log.critical("model step exceeded %.1fs (RERANKQ_STEP_TIMEOUT_S); exiting", self._step_timeout_s)
                logging.shutdown()
                os._exit(70)
