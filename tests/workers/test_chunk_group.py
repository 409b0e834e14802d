"""A grouped message's chunks (workers/chunk_group.py), with a fake chunk runner (pure unit test; the
real path runs in tests/integration/test_grouped_messages.py and test_direct_delivery.py)."""

from __future__ import annotations

import threading

import pytest

from workers import chunk_group
from workers.tasks import RetryChunk


def test_every_chunk_runs_on_the_chunk_threads_retries_go_back_alone_and_errors_come_last(monkeypatch):
    ran: dict[str, str] = {}

    def fake_run_chunk(_runtime, job_id, chunk_idx, priority):
        ran[job_id] = threading.current_thread().name
        if job_id == "retry":
            raise RetryChunk(RuntimeError("busy"), countdown=2.5)
        if job_id == "broken":
            raise ValueError("model error")

    monkeypatch.setattr(chunk_group, "run_chunk", fake_run_chunk)
    retried: list[tuple[str, int, float]] = []
    chunks = [("first", 0), ("retry", 1), ("broken", 0), ("last", 3)]
    with pytest.raises(ValueError, match="model error"):
        chunk_group.run_chunk_group(object(), chunks, 0, lambda *args: retried.append(args))  # type: ignore[arg-type]
    assert set(ran) == {"first", "retry", "broken", "last"}  # an error does not stop the others
    assert all(name.startswith("rerankq-chunk") for name in ran.values())
    assert retried == [("retry", 1, 2.5)]
