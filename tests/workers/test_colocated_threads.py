"""A worker started beside its API (`rerankq up`, the bench) leaves one core to the API, Redis and
the store for interactive batches, and takes every core for bulk ones, unless the operator set
RERANKQ_TORCH_THREADS; the batcher switches the model's threads by the lane of each batch."""

from __future__ import annotations

from commands import processes
from commands.processes import colocated_worker_env


def test_every_core_but_one(monkeypatch):
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 8)
    assert colocated_worker_env({"A": "1"}) == {"A": "1", "RERANKQ_TORCH_THREADS": "7",
                                                "RERANKQ_TORCH_THREADS_BULK": "8"}


def test_at_least_one_thread(monkeypatch):
    for cores in (1, None):
        monkeypatch.setattr(processes.os, "cpu_count", lambda cores=cores: cores)
        assert colocated_worker_env({})["RERANKQ_TORCH_THREADS"] == "1"


def test_the_operators_setting_wins(monkeypatch):
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 8)
    assert colocated_worker_env({"RERANKQ_TORCH_THREADS": "3"})["RERANKQ_TORCH_THREADS"] == "3"


def test_the_model_threads_follow_the_lane_of_each_batch(monkeypatch):
    import torch

    from workers.runtime import LaneThreads

    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    threads = LaneThreads(interactive=1, bulk=2)
    for priority in (0, 1, 1, 2, 0, 0):
        threads.for_priority(priority)
    assert calls == [2, 1]  # set only when the lane changes


def test_the_batcher_tells_each_batch_its_lane():
    from models.base import Encoded
    from workers.batcher import Batcher

    seen: list[int] = []
    batcher = Batcher(lambda encoded: [0.5] * len(encoded), max_tokens=1000, max_pairs=8, max_wait_s=0.0,
                      before_batch=seen.append)
    batcher.start()
    try:
        encoded = [Encoded(input_ids=[1, 2, 3])]
        batcher.submit(encoded, priority=1).result(timeout=10)
        batcher.submit(encoded, priority=0).result(timeout=10)
    finally:
        batcher.stop()
    assert seen == [1, 0]
