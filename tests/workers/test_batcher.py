"""The batcher with a fake scoring function (pure unit tests: no Celery, no model)."""

from __future__ import annotations

import threading
import time

import pytest

from models.base import Encoded
from workers.batch_plan import batch_tokens, form_batches, pick_batch
from workers.batcher import Batcher, _Group, _Item


def enc(n: int, tag: int = 0) -> Encoded:
    return Encoded(input_ids=[tag] * n)


def item(n: int) -> _Item:
    return _Item(_Group(None, [None], 1, lambda: False), 0, enc(n), 1, 0.0)


class Recorder:
    """Scores a pair as its first token id; records each batch's lengths."""

    def __init__(self, fail_when=None, delay_s: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.fail_when = fail_when
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, batch):
        with self.lock:
            self.batches.append([e.length for e in batch])
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_when and self.fail_when(batch):
            raise RuntimeError("boom")
        return [float(e.input_ids[0]) + e.length / 1000 for e in batch]


def run_batcher(fn, **kwargs) -> Batcher:
    params = dict(max_tokens=1000, max_pairs=8, max_wait_s=0.02)
    params.update(kwargs)
    batcher = Batcher(fn, **params)
    batcher.start()
    return batcher


def test_form_batches_sorts_and_respects_budget_and_cap():
    items = [item(n) for n in (50, 10, 300, 20, 30, 10, 100)]
    batches = form_batches(items, max_tokens=200, max_pairs=3)
    lengths = [[i.length for i in b] for b in batches]
    assert lengths == [[10, 10, 20], [30, 50], [100], [300]]
    for batch in batches[:-1]:
        assert max(i.length for i in batch) * len(batch) <= 200 and len(batch) <= 3


def test_single_item_over_budget_still_gets_its_own_batch():
    assert [[i.length for i in b] for b in form_batches([item(5000)], 100, 4)] == [[5000]]


def test_scores_return_in_submission_order():
    fn = Recorder()
    batcher = run_batcher(fn)
    try:
        encoded = [enc(n, tag) for tag, n in enumerate([30, 5, 17, 2])]
        scores = batcher.submit(encoded).result(timeout=5)
        assert scores == [0.03, 1.005, 2.017, 3.002]
    finally:
        batcher.stop()


def test_concurrent_groups_share_batches():
    fn = Recorder(delay_s=0.01)
    batcher = run_batcher(fn, max_pairs=64, max_wait_s=0.05)
    try:
        futures = [batcher.submit([enc(4, g), enc(6, g)]) for g in range(10)]
        results = [f.result(timeout=5) for f in futures]
        assert [r[0] for r in results] == [float(g) + 0.004 for g in range(10)]
        assert len(fn.batches) < 10, fn.batches
    finally:
        batcher.stop()


def test_interactive_lane_is_served_first():
    fn = Recorder(delay_s=0.05)
    batcher = run_batcher(fn, max_pairs=2, max_wait_s=0.0)
    try:
        first = batcher.submit([enc(3, 9)], priority=1)  # occupies the model
        time.sleep(0.01)
        bulk = batcher.submit([enc(7, 1)] * 6, priority=1)
        interactive = batcher.submit([enc(5, 2)], priority=0)
        interactive.result(timeout=5)
        assert not bulk.done(), "the interactive pair waited behind bulk pairs"
        bulk.result(timeout=5), first.result(timeout=5)
    finally:
        batcher.stop()


def test_failing_pair_fails_only_its_group_after_splitting():
    fn = Recorder(fail_when=lambda batch: any(e.input_ids[0] == 13 for e in batch))
    batcher = run_batcher(fn, max_pairs=16, max_wait_s=0.05)
    try:
        good = batcher.submit([enc(4, 1), enc(4, 2)])
        poison = batcher.submit([enc(4, 13), enc(4, 3)])
        assert good.result(timeout=5) == [1.004, 2.004]
        with pytest.raises(RuntimeError, match="boom"):
            poison.result(timeout=5)
        assert batcher.totals.failures == 1 and batcher.totals.splits >= 1
    finally:
        batcher.stop()


def test_oversized_batch_is_split_not_failed():
    """Out-of-memory stand-in: batches above 2 pairs raise; the batcher retries in halves."""
    fn = Recorder(fail_when=lambda batch: len(batch) > 2)
    batcher = run_batcher(fn, max_pairs=8, max_wait_s=0.05)
    try:
        scores = batcher.submit([enc(4, t) for t in range(8)]).result(timeout=5)
        assert scores == [t + 0.004 for t in range(8)]
    finally:
        batcher.stop()


def test_cancelled_group_is_not_scored():
    fn = Recorder(delay_s=0.1)
    batcher = run_batcher(fn, max_pairs=1, max_wait_s=0.0)
    try:
        busy = batcher.submit([enc(3, 1)])
        time.sleep(0.02)
        doomed = batcher.submit([enc(3, 2), enc(3, 2)], is_cancelled=lambda: True)
        busy.result(timeout=5)
        time.sleep(0.3)
        assert doomed.cancelled()
        assert len(fn.batches) == 1
    finally:
        batcher.stop()


def test_empty_submission_resolves_immediately():
    batcher = Batcher(Recorder(), max_tokens=10, max_pairs=1, max_wait_s=0)
    assert batcher.submit([]).result(timeout=1) == []


# --- shared prefixes -------------------------------------------------------------------------


def shared(prefix: int, rest: int, key: str, tag: int = 0) -> Encoded:
    """A pair whose first `prefix` tokens are shared by every pair with the same key."""
    return Encoded(input_ids=[tag] * (prefix + rest), prefix_len=prefix, prefix_key=key)


def sitem(prefix: int, rest: int, key: str, enqueued_at: float = 0.0) -> _Item:
    return _Item(_Group(None, [None], 1, lambda: False), 0, shared(prefix, rest, key), 1, enqueued_at)


def test_sharing_costs_each_prefix_once_so_more_pairs_fit():
    items = [sitem(100, 10, "q") for _ in range(8)]
    assert [len(b) for b in form_batches(items, max_tokens=400, max_pairs=64)] == [3, 3, 2]
    # 100 (prefix once) + 8 x 10 = 180 tokens
    assert [len(b) for b in form_batches(items, max_tokens=400, max_pairs=64, share_prefix=True)] == [8]


def test_sharing_sorts_by_the_unshared_rest_in_bands_and_by_query_within_a_band():
    """Bands are a quarter of the longest prefix (80 -> 20 tokens): 5 | 20, 30."""
    items = [sitem(80, r, "a") for r in (30, 5, 20)] + [sitem(20, r, "b") for r in (5, 30, 20)]
    batches = form_batches(items, max_tokens=10_000, max_pairs=2, share_prefix=True)
    got = [[(i.encoded.prefix_key, i.length - i.encoded.prefix_len) for i in b] for b in batches]
    assert got == [[("a", 5), ("b", 5)], [("a", 20), ("a", 30)], [("b", 20), ("b", 30)]]


def test_sharing_batches_stay_within_the_budget_as_the_model_runs_them():
    import random

    rng = random.Random(7)
    prefixes = {f"q{k}": rng.randint(20, 60) for k in range(7)}  # one query: one prefix length
    keys = [rng.choice(sorted(prefixes)) for _ in range(200)]
    items = [sitem(prefixes[k], rng.randint(1, 80), k) for k in keys]
    for batch in form_batches(items, max_tokens=1500, max_pairs=16, share_prefix=True):
        assert len(batch) <= 16
        if len(batch) > 1:
            assert batch_tokens(batch, True) <= 1500


def test_oldest_query_runs_alone_when_that_is_cheaper_per_pair():
    mine = [sitem(100, 10, "old", enqueued_at=0.0) for _ in range(6)]
    others = [sitem(100, 10, f"new{i}", enqueued_at=1.0) for i in range(6)]
    batch = pick_batch(mine + others, max_tokens=10_000, max_pairs=8, share_prefix=True)
    assert {i.encoded.prefix_key for i in batch} == {"old"} and len(batch) == 6


def test_small_query_is_mixed_with_others_to_keep_the_batch_large():
    mine = [sitem(100, 10, "old", enqueued_at=0.0) for _ in range(2)]
    others = [sitem(100, 10, "new", enqueued_at=1.0) for _ in range(30)]
    batch = pick_batch(mine + others, max_tokens=10_000, max_pairs=16, share_prefix=True)
    assert len(batch) == 16 and sum(i.encoded.prefix_key == "old" for i in batch) == 2


def test_totals_count_shared_tokens_as_the_model_computes_them():
    fn = Recorder()
    batcher = run_batcher(fn, max_tokens=10_000, max_pairs=8, max_wait_s=0.0, share_prefix=True)
    try:
        batcher.submit([shared(100, rest, "q", tag=1) for rest in (10, 20, 30, 40)]).result(timeout=5)
        assert fn.batches == [[110, 120, 130, 140]]
        assert (batcher.totals.real_tokens, batcher.totals.padded_tokens) == (100 + 100, 100 + 4 * 40)
        assert batcher.totals.queue_wait_s >= 0.0 and batcher.totals.pairs == 4
    finally:
        batcher.stop()


# --- adaptive wait ---------------------------------------------------------------------------


def test_work_that_piled_up_during_a_batch_goes_without_waiting():
    """max_wait is 30 s: any wait at all would blow the 5 s bound on the results."""
    fn = Recorder(delay_s=0.2)
    batcher = run_batcher(fn, max_pairs=2, max_wait_s=30.0)
    try:
        first = batcher.submit([enc(3, 1), enc(3, 2)])  # a full batch: no wait either
        deadline = time.monotonic() + 5
        while not fn.batches and time.monotonic() < deadline:
            time.sleep(0.005)
        assert fn.batches, "the first batch never started"
        second = batcher.submit([enc(3, 3)])  # arrives while the model is busy
        assert first.result(timeout=5) and second.result(timeout=5) == [3.003]
        assert batcher.totals.waits == 0 and batcher.totals.waited_s == 0.0
    finally:
        batcher.stop()


def test_a_lone_job_after_a_quiet_spell_goes_without_waiting():
    """max_wait is 30 s: a wait would blow the 5 s bound."""
    batcher = run_batcher(Recorder(), max_pairs=8, max_wait_s=30.0)
    try:
        assert batcher.submit([enc(3, 4)]).result(timeout=5) == [4.003]
        assert batcher.totals.waits == 0
    finally:
        batcher.stop()


def test_a_job_arriving_in_a_burst_waits_at_most_max_wait():
    batcher = run_batcher(Recorder(), max_pairs=8, max_wait_s=0.2)  # a burst: gaps under 2 s
    try:
        assert batcher.submit([enc(3, 1)]).result(timeout=5) == [1.003]  # alone: no wait
        assert batcher.submit([enc(3, 4)]).result(timeout=5) == [4.003]  # 2nd within 2 s: waits
        assert batcher.totals.waits == 1
        assert 0.0 < batcher.totals.waited_s < 0.2 + 1.0  # bounded by max_wait (+ scheduling slack)
    finally:
        batcher.stop()


def test_a_full_queue_goes_at_once():
    batcher = run_batcher(Recorder(), max_pairs=2, max_wait_s=30.0)
    try:
        assert batcher.submit([enc(3, 1), enc(3, 2)]).result(timeout=5) == [1.003, 2.003]
        assert batcher.totals.waits == 0
    finally:
        batcher.stop()


def test_start_returns_after_on_start_ran_in_the_batcher_thread():
    seen = []
    batcher = Batcher(Recorder(), max_tokens=100, max_pairs=4, max_wait_s=0,
                      on_start=lambda: seen.append(threading.current_thread().name))
    batcher.start()
    try:
        assert seen == ["rerankq-batcher"]
        assert batcher.submit([enc(2, 1)]).result(timeout=5) == [1.002]
    finally:
        batcher.stop()


def test_a_failing_on_start_fails_start():
    def boom():
        raise RuntimeError("warm-up failed")

    batcher = Batcher(Recorder(), max_tokens=100, max_pairs=4, max_wait_s=0, on_start=boom)
    with pytest.raises(RuntimeError, match="warm-up failed"):
        batcher.start()


def test_device_defaults_apply_only_when_the_setting_is_empty():
    from workers.batch_plan import max_tokens_for, overhead_tokens_for

    assert (max_tokens_for(None, "cpu"), max_tokens_for(None, "cuda:1")) == (2048, 16384)
    assert (overhead_tokens_for(None, "cpu"), overhead_tokens_for(None, "cuda")) == (64, 1024)
    assert max_tokens_for(500, "cuda") == 500 and overhead_tokens_for(0, "cpu") == 0
