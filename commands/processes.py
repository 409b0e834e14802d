"""Child processes of the service's commands: `python -m rerankq <part>` in its own session, and a bounded stop.

One copy for `rerankq up`, the bench, the soak and the integration tests' stacks."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def spawn_service(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """`python -m rerankq <args>` in its own session, output to `log_path` (also used by `rerankq bench`)."""
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "rerankq", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


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
