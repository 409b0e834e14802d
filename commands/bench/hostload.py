"""How busy the machine was with other work while a figure was measured (Linux /proc).

On a shared machine a slow figure may be someone else's test run; each measurement records
the CPU cores that processes outside the benchmark used meanwhile, so a disturbed figure can
be told from a slow system.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable, Optional

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_jiffies() -> Optional[int]:
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


def _process_jiffies(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total


class HostLoad:
    """Call `start()` then `stop()`: `other_cores` is the mean number of cores that processes
    other than `own_pids()` kept busy in between (None where /proc is not readable)."""

    def __init__(self, own_pids: Callable[[], list[int]]) -> None:
        self.own_pids = own_pids
        self.other_cores: Optional[float] = None
        self._start: Optional[tuple[float, Optional[int], int]] = None

    def start(self) -> "HostLoad":
        self._start = (time.monotonic(), _busy_jiffies(), _process_jiffies(self.own_pids()))
        return self

    def stop(self) -> Optional[float]:
        if self._start is None:
            return None
        started, busy, own = self._start
        busy_now = _busy_jiffies()
        elapsed = time.monotonic() - started
        if busy is None or busy_now is None or elapsed <= 0:
            return None
        others = (busy_now - busy) - (_process_jiffies(self.own_pids()) - own)
        self.other_cores = round(max(0.0, others / _HZ / elapsed), 2)
        return self.other_cores


def loadavg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
