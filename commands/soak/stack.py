"""The soak's own stack: PostgreSQL, Redis with AOF, N workers and M API processes on loopback,
each a child process the fault injector may kill, stop or restart."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx

from commands.local_stack import spawn_service, stop_process
from commands.pg_cluster import PostgresCluster
from commands.redis_server import free_port, start_redis, wait_for_port
from store.migrate import upgrade

POISON = "soak-poison-document"
CHUNK_DEADLINE_S = 5.0


@dataclass
class SoakStack:
    root: Path
    model_dir: Path
    workers: int = 2
    apis: int = 2
    redis_port: int = field(default_factory=free_port)
    pg: Optional[PostgresCluster] = None
    database_url: str = ""
    redis: Optional[subprocess.Popen] = None
    worker_processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    api_processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    unplanned_exits: list[str] = field(default_factory=list)  # processes that ended on their own, restarted

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_processes]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RERANKQ_")}
        env.update({
            "RERANKQ_REDIS_URL": self.redis_url,
            "RERANKQ_DATABASE_URL": self.database_url,
            "RERANKQ_MODEL": str(self.model_dir),
            "RERANKQ_DATA_DIR": str(self.root),
            "RERANKQ_AUTH_ENABLED": "false",
            "RERANKQ_HEARTBEAT_INTERVAL_S": "0.5",
            "RERANKQ_MAX_BATCH_WAIT_MS": "20",
            "RERANKQ_SYNC_TIMEOUT_S": "20",
            "RERANKQ_FAULT_POISON_MARKER": POISON,
            # Short recovery clocks, so each fault is survived within seconds, not minutes.
            "RERANKQ_CHUNK_DEADLINE_S": str(CHUNK_DEADLINE_S),
            "RERANKQ_VISIBILITY_TIMEOUT_S": str(int(3 * CHUNK_DEADLINE_S)),
            "RERANKQ_UNACKED_RESTORE_INTERVAL_S": "1",
            "RERANKQ_SWEEP_INTERVAL_S": "2",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
        })
        return env

    def start(self) -> "SoakStack":
        self.root.mkdir(parents=True, exist_ok=True)
        self.pg = PostgresCluster().start()
        self.database_url = self.pg.create_database("rerankq_soak")
        upgrade(self.database_url)
        self.start_redis()
        for index in range(self.workers):
            self.start_worker(f"soak-w{index}")
        for _ in range(self.apis):
            self.start_api(free_port())
        self.wait_ready(120)
        return self

    def start_redis(self) -> None:
        self.redis = start_redis(self.root / "redis", self.redis_port, self.root / "redis.log", appendonly=True)

    def start_worker(self, name: str) -> None:
        self.worker_processes[name] = spawn_service(["worker", "--hostname", name], self.env(),
                                                    self.root / f"worker-{name}.log")

    def start_api(self, port: int) -> None:
        process = spawn_service(["api", "--port", str(port)], self.env(), self.root / f"api-{port}.log")
        self.api_processes[port] = process
        wait_for_port(port, 60, process)

    def restart_exited(self) -> None:
        """Do what the deployment's restart policy does (compose `restart: unless-stopped`, a k8s
        Deployment): start again a worker or API process that ended without being told to. Celery's
        consumer can die on a broker restart (kombu's connection is gone while it restores unacked
        messages: 'Unrecoverable error ... hostname'); each such exit is counted in the report."""
        for name, process in list(self.worker_processes.items()):
            if process.poll() is not None:
                self.unplanned_exits.append(f"worker {name} exited with {process.returncode}")
                self.start_worker(name)
        for port, process in list(self.api_processes.items()):
            if process.poll() is not None:
                self.unplanned_exits.append(f"api:{port} exited with {process.returncode}")
                self.start_api(port)

    def supervise_until(self, deadline: float) -> None:
        """Sleep until the monotonic `deadline`, restarting processes that end on their own."""
        while (left := deadline - time.monotonic()) > 0:
            self.restart_exited()
            time.sleep(min(1.0, left))

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until every API answers /readyz 200 with every worker live (the recovery time)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            self.restart_exited()
            try:
                answers = [httpx.get(url + "/readyz", timeout=2) for url in self.api_urls]
                if all(a.status_code == 200 and a.json().get("workers", 0) >= self.workers for a in answers):
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the soak stack was not ready within {timeout_s}s (logs in {self.root})")

    # Faults -----------------------------------------------------------------------------------

    def kill_worker(self, name: str, sig: int) -> None:
        process = self.worker_processes[name]
        if sig == signal.SIGKILL:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        else:
            stop_process(process, sig, timeout_s=CHUNK_DEADLINE_S * 6)
        self.start_worker(name)

    def kill_api(self, port: int, sig: int) -> None:
        process = self.api_processes[port]
        if sig == signal.SIGKILL:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        else:
            stop_process(process, sig, timeout_s=30)
        self.start_api(port)

    def restart_redis(self, down_s: float) -> None:
        assert self.redis is not None, "the stack is not started"
        stop_process(self.redis, signal.SIGTERM, timeout_s=30)  # AOF: what was acknowledged survives
        time.sleep(down_s)
        self.start_redis()

    def restart_postgres(self, down_s: float) -> None:
        assert self.pg is not None, "the stack is not started"
        self.pg.pause()
        time.sleep(down_s)
        self.pg.resume()

    def stall_worker(self, name: str, seconds: float) -> None:
        """SIGSTOP a worker: it holds its messages and its claims without progress, then goes on."""
        process = self.worker_processes[name]
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.killpg(process.pid, signal.SIGCONT)

    def stop(self) -> None:
        for process in self.api_processes.values():
            stop_process(process, signal.SIGTERM, timeout_s=20)
        for process in self.worker_processes.values():
            stop_process(process, signal.SIGTERM, timeout_s=40)
        if self.redis is not None:
            stop_process(self.redis, signal.SIGTERM, timeout_s=20)
        if self.pg is not None:
            self.pg.stop()
