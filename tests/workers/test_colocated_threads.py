"""A worker started beside its API (`rerankq up`, the bench) leaves one core to the API, Redis and
the store unless the operator set RERANKQ_TORCH_THREADS."""

from __future__ import annotations

from commands import processes
from commands.processes import colocated_worker_env


def test_every_core_but_one(monkeypatch):
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 8)
    assert colocated_worker_env({"A": "1"}) == {"A": "1", "RERANKQ_TORCH_THREADS": "7"}


def test_at_least_one_thread(monkeypatch):
    for cores in (1, None):
        monkeypatch.setattr(processes.os, "cpu_count", lambda cores=cores: cores)
        assert colocated_worker_env({})["RERANKQ_TORCH_THREADS"] == "1"


def test_the_operators_setting_wins(monkeypatch):
    monkeypatch.setattr(processes.os, "cpu_count", lambda: 8)
    assert colocated_worker_env({"RERANKQ_TORCH_THREADS": "3"})["RERANKQ_TORCH_THREADS"] == "3"
