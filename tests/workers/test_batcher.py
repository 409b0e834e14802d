"""The batcher with a fake scoring function (pure unit tests: no Celery, no model)."""

from __future__ import annotations

import threading
import time

import pytest

from models.base import Encoded
from workers.batcher import Batcher, _Group, _Item, form_batches


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
