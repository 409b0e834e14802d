"""What the batcher spends per batch outside the model stays per submission, not per pending pair
(pure unit tests: a fake scoring function, no Celery, no model)."""

from __future__ import annotations

import random

from models.base import Encoded
from workers.batch_plan import form_batches, iter_batches, pick_batch
from workers.batcher import Batcher, _Group, _Item


def test_a_deep_queue_asks_each_submission_once_per_batch_if_it_was_cancelled():
    calls = []
    batcher = Batcher(lambda batch: [float(e.length) for e in batch], max_tokens=64, max_pairs=4, max_wait_s=0.0)
    batcher.start()
    try:
        future = batcher.submit([Encoded(input_ids=[1] * 8) for _ in range(200)],
                                is_cancelled=lambda: calls.append(1) is not None)
        assert len(future.result(timeout=30)) == 200
    finally:
        batcher.stop()
    batches = batcher.totals.batches
    assert batches == 50
    # Once per batch for the one submission (it was asked for every pending pair before).
    assert len(calls) <= batches


def test_one_batch_is_picked_lazily_and_as_when_all_are_formed():
    rng = random.Random(3)
    group = _Group(None, [None], 1, lambda: False)
    lane = [_Item(group, 0, Encoded(input_ids=[i % 7] * rng.randint(4, 300)), 1, rng.random()) for i in range(400)]
    oldest = min(lane, key=lambda i: i.enqueued_at)
    every = form_batches(lane, 2048, 64, False, 64)
    assert every == list(iter_batches(lane, 2048, 64, False, 64))
    assert pick_batch(lane, 2048, 64, False, 64) == next(b for b in every if oldest in b)


def test_what_costing_reads_of_a_pair_is_computed_once_when_it_is_queued(monkeypatch):
    """The model thread plans every batch: a pair's length and shared prefix are read when it is
    queued, never again per batch (they were a fifth of its time at a deep queue)."""
    import workers.batch_plan as batch_plan

    calls = []
    real_share_key = batch_plan.share_key
    monkeypatch.setattr(batch_plan, "share_key", lambda encoded: calls.append(1) or real_share_key(encoded))
    batcher = Batcher(lambda batch: [float(e.length) for e in batch], max_tokens=256, max_pairs=4, max_wait_s=0.0,
                      share_prefix=True)
    batcher.start()
    try:
        pairs = [Encoded(input_ids=[q] * 10 + [7] * (5 + d), prefix_len=10, prefix_key=("query", q))
                 for q in range(4) for d in range(50)]
        assert batcher.submit(pairs).result(timeout=30) == [float(p.length) for p in pairs]
    finally:
        batcher.stop()
    assert batcher.totals.batches >= 50
    assert len(calls) == len(pairs)  # once each, at submit
