"""`rerankq up`: the whole service on one machine — Redis, migrated SQLite, one worker, the API.

Each part is a child process; Ctrl-C (or SIGTERM) stops the API first, then the worker
(warm shutdown returns what it holds to the queue), then Redis.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from commands.processes import spawn_service, stop_process
from commands.redis_server import start_redis
from core.settings import Settings
from store.migrate import upgrade


def run_local_stack(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    redis_port = urlparse(settings.redis_url).port or 6379
    taken = ports_in_use({redis_port: "RERANKQ_REDIS_URL (e.g. redis://127.0.0.1:6380/0)",
                          settings.port: "--port or RERANKQ_PORT"})
    if taken:
        print(taken, file=sys.stderr, flush=True)
        return 2
    print(f"rerankq: starting redis on 127.0.0.1:{redis_port} (AOF in {data_dir / 'redis'})", flush=True)
    redis = start_redis(data_dir / "redis", redis_port, log_path=data_dir / "redis.log")
    children: list[subprocess.Popen] = [redis]
    try:
        print(f"rerankq: migrating {settings.database_url}", flush=True)
        upgrade(settings.database_url)
        _announce_access(settings)
        env = {**os.environ, "RERANKQ_DATA_DIR": str(data_dir), "RERANKQ_DATABASE_URL": settings.database_url,
               "RERANKQ_REDIS_URL": settings.redis_url, "RERANKQ_MODEL": settings.model,
               "RERANKQ_HOST": settings.host, "RERANKQ_PORT": str(settings.port),
               "RERANKQ_AUTH_ENABLED": str(settings.auth_enabled).lower(),
               "RERANKQ_SECRET_KEY": local_secret_key(settings)}
        worker = spawn_service(["worker"], env, data_dir / "worker.log")
        api = spawn_service(["api"], env, data_dir / "api.log")
        children += [worker, api]
        print(f"rerankq: worker loading {settings.model} (log: {data_dir / 'worker.log'})", flush=True)
        print(f"rerankq: API on http://{settings.host}:{settings.port}  (docs: /docs, ready: /readyz; "
              f"log: {data_dir / 'api.log'}); Ctrl-C stops everything", flush=True)
        return _supervise(worker, api, data_dir)
    except KeyboardInterrupt:
        return 0
    finally:
        print("rerankq: stopping", flush=True)
        for process in reversed(children):
            stop_process(process)


def local_secret_key(settings: Settings) -> str:
    """The configured secret when it is a good one; otherwise a fresh random one for this run (the
    API refuses placeholders such as `.env.example`'s, and one process needs no shared value)."""
    from core.secret_key_check import secret_key_problem

    if settings.secret_key and secret_key_problem(settings.model_copy(update={"auth_enabled": True})) is None:
        return settings.secret_key
    return secrets.token_urlsafe(32)


def ports_in_use(ports: dict[int, str]) -> str:
    """A message naming each port something already listens on, with the setting that moves it
    (an empty string when all are free): `up` starts its own Redis and API on them."""
    taken = []
    for port, setting in ports.items():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(f"rerankq: 127.0.0.1:{port} is already in use; choose another port with {setting}")
    return "\n".join(taken)


def _announce_access(settings: Settings) -> None:
    """Print a fresh admin key the first time, so the local service is never open by accident."""
    from store.db import session_scope
    from store.keys import any_active_key, create_key

    if not settings.auth_enabled:
        print("rerankq: access control is OFF (--open): anyone who reaches the port can use the API", flush=True)
        return
    with session_scope(settings.database_url) as session:
        if any_active_key(session):
            print("rerankq: API keys required (`rerankq keys create` makes more)", flush=True)
            return
        _row, token = create_key(session, "local admin (rerankq up)", ["admin"])
    print(f"rerankq: created an admin API key; send it as `Authorization: Bearer {token}`", flush=True)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a child's log, for saying why it died."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _supervise(worker: subprocess.Popen, api: subprocess.Popen, data_dir: Path) -> int:
    """Wait until Ctrl-C or until a part dies (then say which and where its log is)."""
    stop = {"now": False}

    def _on_term(*_args) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _on_term)
    while not stop["now"]:
        for name, process in (("worker", worker), ("api", api)):
            if process.poll() is not None:
                log = data_dir / f"{name}.log"
                print(f"rerankq: the {name} exited with code {process.returncode}; last lines of {log}:\n"
                      f"{log_tail(log)}", file=sys.stderr, flush=True)
                return process.returncode or 1
        time.sleep(0.5)
    return 0
