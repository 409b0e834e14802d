"""One thread per worker process owns the model and scores pairs from every running chunk together.

Task threads submit encoded pairs and wait on a Future. The batcher takes the highest-priority
lane and runs the batch that holds its oldest pair, formed by workers/batch_plan.py (length
sorted, under a padded-token budget and a pair cap, shared prompt prefixes costed once), so
short pairs never pay for long ones. A failing batch is split in halves until the failing pair
is alone: out-of-memory on a large batch becomes two smaller batches, and a poison pair fails
only its own chunk.

The wait for company is adaptive: none when the pending pairs already fill a batch, none when
work piled up while the model was busy (back-to-back batches), none for a submission that
came after a quiet spell (a lone job on an idle system: nobody is about to join it), and at
most `max_wait_s` while submissions arrive close together.
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
from models.prefix_cache import batch_cost
from workers.batch_plan import PairFacts, pair_facts, pick_batch

log = logging.getLogger(__name__)
WINDOW_BATCHES = 8  # batches' worth of the oldest pending pairs considered when forming one


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
    facts: PairFacts = field(init=False)  # on the submitting thread, not the model's

    def __post_init__(self) -> None:
        self.facts = pair_facts(self.encoded)

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
    queue_wait_s: float = 0.0  # summed over pairs: submit to the start of their forward pass
    waits: int = 0  # batches that waited for company (an idle model and a thin queue)
    waited_s: float = 0.0  # time spent in those waits


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
        share_prefix: bool = False,
        overhead_tokens: Optional[int] = None,
        on_start: Optional[Callable[[], None]] = None,
    ) -> None:
        self._score_fn = score_fn
        self._max_tokens = max_tokens
        self._max_pairs = max_pairs
        self._max_wait_s = max_wait_s
        self._share_prefix = share_prefix
        self._overhead_tokens = overhead_tokens
        self._on_start = on_start
        self._started = threading.Event()
        self._start_error: Optional[BaseException] = None
        # Arrivals closer than this count as a burst worth waiting for; after a longer gap a
        # submission is alone and goes at once.
        self._burst_gap_s = 10 * max_wait_s
        self._last_submit = float("-inf")
        self._gap_before_last = float("inf")
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
        """Start the batcher thread; returns once its `on_start` (e.g. a warm-up pass) is done."""
        self._running = True
        self._threads = [threading.Thread(target=self._loop, name="rerankq-batcher", daemon=True)]
        if self._step_timeout_s > 0:
            self._threads.append(threading.Thread(target=self._watchdog, name="rerankq-watchdog", daemon=True))
        for thread in self._threads:
            thread.start()
        self._started.wait()
        if self._start_error is not None:
            self.stop()
            raise self._start_error

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
            self._gap_before_last, self._last_submit = now - self._last_submit, now
            self._pending.extend(items)
            self._cond.notify()
        return future

    def pending_pairs(self) -> int:
        with self._cond:
            return len(self._pending)

    # --- the loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            if self._on_start is not None:
                self._on_start()
        except BaseException as error:  # noqa: BLE001 - re-raised by start() in the caller's thread
            self._start_error = error
            return
        finally:
            self._started.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> Optional[list[_Item]]:
        with self._cond:
            back_to_back = bool(self._pending)  # work piled up while the model was busy
            while self._running and not self._pending:
                self._cond.wait()
            if not self._running:
                return None
            if not back_to_back:
                self._wait_for_more()
            self._drop_cancelled()
            if not self._pending:
                return []
            top = min(i.priority for i in self._pending)
            # The oldest pairs of the lane (pending is in submission order): forming batches
            # costs Python time per pending pair, so a deep queue is looked at in a window.
            lane = [i for i in self._pending if i.priority == top][: WINDOW_BATCHES * self._max_pairs]
            batch = pick_batch(lane, self._max_tokens, self._max_pairs, self._share_prefix, self._overhead_tokens)
            taken = set(map(id, batch))
            self._pending = [i for i in self._pending if id(i) not in taken]
            return batch

    def _wait_for_more(self) -> None:
        """At an idle model, wait up to max_wait_s for company unless the queue already fills a
        batch or the only submission came after a quiet spell."""
        if self._gap_before_last > self._burst_gap_s and len({id(i.group) for i in self._pending}) == 1:
            return
        started = time.monotonic()
        deadline = started + self._max_wait_s
        waited = False
        while self._running:
            longest = max(i.length for i in self._pending)
            if len(self._pending) >= self._max_pairs or longest * len(self._pending) >= self._max_tokens:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            waited = True
            self._cond.wait(remaining)
        if waited:
            self.totals.waits += 1
            self.totals.waited_s += time.monotonic() - started

    def _drop_cancelled(self) -> None:
        """Drop the pairs of finished or cancelled submissions, asking each submission once
        (not once per pair: a deep queue is looked at before every batch)."""
        groups = {id(i.group): i.group for i in self._pending}
        dropped = {key for key, group in groups.items() if self._group_dropped(group)}
        if dropped:
            self._pending = [i for i in self._pending if id(i.group) not in dropped]

    @staticmethod
    def _group_dropped(group: _Group) -> bool:
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
        """Real tokens: what the model must compute (a shared prefix once); padded: what it did."""
        real, padded = batch_cost([i.encoded for i in batch], self._share_prefix)
        wait = sum(started - i.enqueued_at for i in batch)
        totals = self.totals
        totals.batches += 1
        totals.pairs += len(batch)
        totals.real_tokens += real
        totals.padded_tokens += padded
        totals.queue_wait_s += wait
        if self._on_batch is not None:
            groups = len({id(i.group) for i in batch})
            stats = BatchStats(len(batch), real, padded, wait / len(batch), finished - started, groups)
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
