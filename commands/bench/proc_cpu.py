"""CPU seconds used by each process of the stack under test (API, worker, Redis, database, client).

The queue's cost around the forward pass is CPU: per request and per pair, each part's share
says where the next limit is. A part is a process tree (PostgreSQL forks a backend per
connection); its CPU is its own, its live descendants' and what its reaped children used.
Descendants that exit between two snapshots are counted through their parent's reaped-children
times, as the kernel adds them there when the parent waits for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

import psutil


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid`, its live descendants and its reaped children (0 if gone).
    For this process (the load-generating client) only its own CPU: its children are the
    other parts."""
    if pid == os.getpid():
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass
class CpuSnapshot:
    seconds: dict[str, float]


class StackCpu:
    """Snapshots of named process trees; `since(before)` is CPU seconds per part in between."""

    def __init__(self, parts: Mapping[str, Optional[int]]) -> None:
        self.parts = {name: pid for name, pid in parts.items() if pid}

    def snapshot(self) -> CpuSnapshot:
        return CpuSnapshot({name: tree_cpu_seconds(pid) for name, pid in self.parts.items()})

    def since(self, before: CpuSnapshot) -> dict[str, float]:
        now = self.snapshot()
        return {name: round(max(0.0, now.seconds[name] - before.seconds.get(name, 0.0)), 4) for name in now.seconds}


def per_unit(cpu_s: Mapping[str, float], requests: int, pairs: int) -> dict[str, dict[str, float]]:
    """CPU per request (ms) and per pair (µs) for each part, and in total."""
    total = sum(cpu_s.values())
    parts = {**cpu_s, "total": total}
    return {
        "cpu_s": {name: round(value, 3) for name, value in parts.items()},
        "ms_per_request": {name: round(1000 * value / requests, 3) for name, value in parts.items()} if requests else {},
        "us_per_pair": {name: round(1e6 * value / pairs, 1) for name, value in parts.items()} if pairs else {},
    }
