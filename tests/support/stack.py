"""Real processes for integration tests: redis-server, `rerankq worker`, `rerankq api`.

Every wait is bounded and every process runs in its own session, so a test can SIGKILL a
worker (and its threads) without touching anything else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import httpx
import redis

from core.redis_keys import WORKER_PATTERN
from commands.redis_server import free_port, start_redis, wait_for_port
from store.migrate import upgrade


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


@dataclass
class RedisProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    appendonly: bool = True
    process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisProcess":
        self.process = start_redis(self.data_dir, self.port, self.data_dir / "redis.log", self.appendonly)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class ServiceProcess:
    """A `python -m rerankq ...` child with its own environment and log file."""

    def __init__(self, args: list[str], env: dict, log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "ServiceProcess":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "rerankq", *self.args], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.process.pid, sig)

    def stop(self, timeout_s: float = 30) -> None:
        if not self.alive():
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Stack:
    """One Redis, one database, any number of workers and one API, all on loopback."""

    root: Path
    redis: RedisProcess
    database_url: str
    model_dir: Path
    extra_env: dict = field(default_factory=dict)
    workers: list[ServiceProcess] = field(default_factory=list)
    api: Optional[ServiceProcess] = None
    api_port: int = 0

    def env(self, **overrides: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RERANKQ_")}
        env.update({
            "RERANKQ_REDIS_URL": self.redis.url,
            "RERANKQ_DATABASE_URL": self.database_url,
            "RERANKQ_MODEL": str(self.model_dir),
            "RERANKQ_DATA_DIR": str(self.root),
            "RERANKQ_HEARTBEAT_INTERVAL_S": "0.5",
            "RERANKQ_AUTH_ENABLED": "false",
            "RERANKQ_MAX_BATCH_WAIT_MS": "20",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
        })
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def migrate(self) -> None:
        upgrade(self.database_url)

    def start_worker(self, name: Optional[str] = None, wait_ready: bool = True, **env: str) -> ServiceProcess:
        name = name or f"w{len(self.workers)}"
        worker = ServiceProcess(["worker", "--hostname", name], self.env(**env), self.root / f"worker-{name}.log")
        worker.start()
        self.workers.append(worker)
        if wait_ready:
            self.wait_worker_ready(name, worker)
        return worker

    def wait_worker_ready(self, name: str, worker: ServiceProcess, timeout_s: float = 120) -> None:
        client = self.redis.client()

        def ready() -> bool:
            if not worker.alive():
                raise RuntimeError(f"worker {name} exited:\n{worker.log()[-4000:]}")
            return client.exists(f"rerankq:worker:{name}") == 1

        wait_until(ready, timeout_s, f"worker {name} heartbeat")

    def start_api(self, **env: str) -> ServiceProcess:
        self.api_port = free_port()
        self.api = self.extra_api(self.api_port, **env)
        return self.api

    def extra_api(self, port: int, **env: str) -> ServiceProcess:
        """Another API process on the same Redis and store (e.g. with other settings)."""
        api = ServiceProcess(["api", "--port", str(port)], self.env(**env), self.root / f"api-{port}.log")
        api.start()
        wait_for_port(port, 60, api.process)
        return api

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rerankq", *args], env=self.env(**env), capture_output=True,
                              text=True, timeout=120)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def heartbeats(self) -> dict[str, dict]:
        client = self.redis.client()
        found = {}
        for key in client.scan_iter(match=WORKER_PATTERN):
            raw = client.get(key)
            if raw:
                body = json.loads(raw)
                found[body["hostname"]] = body
        return found

    def stop(self) -> None:
        if self.api:
            self.api.stop()
        for worker in self.workers:
            worker.stop()
        self.redis.stop()


def wait_job(client: httpx.Client, job_id: str, timeout_s: float = 60, statuses=("succeeded", "failed", "cancelled")):
    def finished():
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["status"] in statuses else None

    return wait_until(finished, timeout_s, f"job {job_id}", interval_s=0.1)


def make_stack(root: Path, model_dir: Path, database_url: str = "", **extra_env: str) -> Stack:
    """Redis started and the store migrated; the caller starts the workers and APIs it needs."""
    root.mkdir(parents=True, exist_ok=True)
    redis_process = RedisProcess(root / "redis").start()
    stack = Stack(root=root, redis=redis_process, database_url=database_url or f"sqlite:///{root / 'rerankq.db'}",
                  model_dir=model_dir, extra_env=extra_env)
    stack.migrate()
    return stack


@contextmanager
def secured_api(stack: Stack, key_specs: list[tuple[str, str, Optional[str]]],
                **env: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, {name: key}) of an extra API process with access control on, over the stack's store.
    Each key spec is (name, scopes, tenant or None); keys are made with the real `rerankq keys create`."""
    port = free_port()
    api = stack.extra_api(port, RERANKQ_AUTH_ENABLED="true", **env)
    try:
        keys = {}
        for name, scopes, tenant in key_specs:
            done = stack.cli("keys", "create", "--name", name, "--scopes", scopes,
                             *(["--tenant", tenant] if tenant else []))
            assert done.returncode == 0, done.stderr
            keys[name] = done.stdout.strip().splitlines()[-1]
        yield f"http://127.0.0.1:{port}", keys
    finally:
        api.stop()
