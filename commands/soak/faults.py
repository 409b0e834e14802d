"""The fault schedule, drawn from the seed, and its injection into the soak stack.

Each fault is injected, then the stack is watched until every API answers ready with every worker
live again: that wait is the fault's recovery time."""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass
from typing import Callable, Optional

from commands.soak.stack import CHUNK_DEADLINE_S, SoakStack

KINDS = ("worker-sigkill", "worker-sigterm", "api-sigkill", "api-sigterm", "redis-restart", "postgres-restart",
         "worker-stall", "poison-document")


@dataclass
class Fault:
    at_s: float  # seconds after the load started
    kind: str
    target: str = ""
    started: float = 0.0  # monotonic clock
    ended: float = 0.0  # injection done (the process restarted, the server back)
    recovery_s: Optional[float] = None  # from injection start until the whole stack is ready again
    error: str = ""


def schedule(minutes: float, seed: int, mean_gap_s: float = 12.0) -> list[Fault]:
    """Faults at random times over the run (none in the first and last few seconds), every kind
    at least once when the run is long enough, in a random order."""
    rng = random.Random(seed)
    duration = minutes * 60
    times, at = [], 5.0
    while True:
        at += rng.uniform(0.5, 1.5) * mean_gap_s
        if at > duration - 5:
            break
        times.append(at)
    kinds = list(KINDS) * (len(times) // len(KINDS) + 1)
    rng.shuffle(kinds)
    return [Fault(at_s=t, kind=k) for t, k in zip(times, kinds)]


class Injector:
    def __init__(self, stack: SoakStack, seed: int, submit_poison: Callable[[], Optional[str]]) -> None:
        self.stack = stack
        self.rng = random.Random(seed + 1)
        self.submit_poison = submit_poison

    def inject(self, fault: Fault) -> None:
        stack = self.stack
        fault.started = time.monotonic()
        try:
            if fault.kind.startswith("worker-"):
                fault.target = self.rng.choice(sorted(stack.worker_processes))
                if fault.kind == "worker-stall":
                    stack.stall_worker(fault.target, CHUNK_DEADLINE_S * 1.5)
                else:
                    stack.kill_worker(fault.target, signal.SIGKILL if fault.kind.endswith("sigkill") else signal.SIGTERM)
            elif fault.kind.startswith("api-"):
                port = self.rng.choice(sorted(stack.api_processes))
                fault.target = f"api:{port}"
                stack.kill_api(port, signal.SIGKILL if fault.kind.endswith("sigkill") else signal.SIGTERM)
            elif fault.kind == "redis-restart":
                fault.target = "redis"
                stack.restart_redis(down_s=self.rng.uniform(0.5, 3.0))
            elif fault.kind == "postgres-restart":
                fault.target = "postgres"
                stack.restart_postgres(down_s=self.rng.uniform(0.5, 3.0))
            elif fault.kind == "poison-document":
                fault.target = self.submit_poison() or "not accepted"
            fault.ended = time.monotonic()
            fault.recovery_s = fault.ended - fault.started + stack.wait_ready(180)
        except Exception as error:  # noqa: BLE001 - reported in the table, and the run fails
            fault.error = f"{type(error).__name__}: {error}"
