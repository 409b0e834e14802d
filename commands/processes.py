"""Child processes of the service's commands: `python -m rerankq <part>` in its own session, and a bounded stop.

One copy for `rerankq up`, the bench, the soak and the integration tests' stacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def spawn_service(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """`python -m rerankq <args>` in its own session, output to `log_path` (also used by `rerankq bench`)."""
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "rerankq", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def colocated_worker_env(env: dict) -> dict:
    """The environment of a worker started on the same host as its API (`rerankq up`, the bench).

    Unless RERANKQ_TORCH_THREADS is set, the model gets every core but one. With one torch thread
    per core, the model's idle OpenMP threads spin through every gap of a forward pass (Python
    between ops) on the cores the API, Redis and the store need: measured on 2 cores with the
    bench's interactive workload, worker CPU per 10-doc request 23.4 -> 10.2 ms with one thread,
    and 0.31x -> 0.44x Infinity's throughput. A worker started alone (`rerankq worker`, one per GPU)
    keeps torch's default."""
    if env.get("RERANKQ_TORCH_THREADS"):
        return env
    return {**env, "RERANKQ_TORCH_THREADS": str(max(1, (os.cpu_count() or 1) - 1))}


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 40.0) -> None:
    """Signal, wait, and kill if it does not end in time."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
