"""System mode: the whole path, HTTP -> Redis -> worker -> store -> client polling.

Starts its own redis-server (AOF on, as in production), a migrated SQLite store, one
`rerankq worker` and one `rerankq api` (the same child-process helpers as `rerankq up`), then
drives them with concurrent client threads that submit jobs (POST /v1/jobs) and long-poll
(GET /v1/jobs/{id}?wait=30) until each is done, through the SDK (commands/bench/clients.py). Batch figures come from the worker itself: its
heartbeat (batches, pairs, real and padded tokens, batcher wait) and its /metrics (broker
queue wait), read before and after each workload.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, TypeVar

import httpx
import redis

from commands.bench.clients import bench_client, job_scores, rerank_scores
from commands.bench.workloads import Job, Workload
from commands.local_stack import log_tail
from commands.processes import spawn_service, stop_process
from commands.redis_server import free_port, start_redis, wait_for_port
from core.redis_keys import worker_key
from rerankq import RerankClient

WORKER = "bench-worker"
T = TypeVar("T")


class BenchSystemError(RuntimeError):
    """A part of the system under test failed; the message names its log."""


@dataclass
class SystemRun:
    pairs: int
    seconds: float
    latencies: list[float]
    scores: list[list[float]]
    worker: dict = field(default_factory=dict)  # heartbeat deltas: batches, pairs, tokens, waits
    broker_wait_s: Optional[float] = None  # mean publish -> task start, per chunk
    sync_latencies: list[float] = field(default_factory=list)  # idle workload: POST /v1/rerank
    other_load_cores: Optional[float] = None  # CPU cores other processes used meanwhile (hostload)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0


class LocalSystem:
    """redis-server + SQLite + one worker + the API in `root`, stopped on exit."""

    def __init__(self, model_dir: Path, max_length: int, root: Path, device: str = "auto",
                 extra_env: Optional[dict] = None, database_url: str = "") -> None:
        self.model_dir = model_dir
        self.database_url = database_url  # empty: a SQLite file in `root`
        self.max_length = max_length
        self.root = root
        self.device = device
        self.extra_env = extra_env or {}
        self.processes: list = []
        self.api_port = 0
        self.metrics_port = 0
        self.redis_url = ""
        self.settings_used: dict = {}
        self.scored_pairs = 0  # pairs this object had scored: the heartbeat must count them all

    # --- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "LocalSystem":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _start(self) -> None:
        from store.migrate import upgrade

        self.root.mkdir(parents=True, exist_ok=True)
        redis_port = free_port()
        self.processes.append(start_redis(self.root / "redis", redis_port, self.root / "redis.log"))
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        database_url = self.database_url or f"sqlite:///{self.root / 'rerankq.db'}"
        upgrade(database_url)
        self.api_port, self.metrics_port = free_port(), free_port()
        env = self._env(database_url)
        worker = spawn_service(["worker", "--hostname", WORKER, "--loglevel", "WARNING"], env,
                               self.root / "worker.log")
        self.processes.append(worker)
        self._wait_worker(worker)
        api = spawn_service(["api", "--port", str(self.api_port)], env, self.root / "api.log")
        self.processes.append(api)
        wait_for_port(self.api_port, 60, api)
        self.settings_used = {k: v for k, v in env.items() if k.startswith("RERANKQ_")}

    def _env(self, database_url: str) -> dict:
        env = {k: v for k, v in os.environ.items()}
        env.update({
            "RERANKQ_MODEL": str(self.model_dir),
            "RERANKQ_MAX_LENGTH": str(self.max_length),
            "RERANKQ_DEVICE": self.device,
            "RERANKQ_REDIS_URL": self.redis_url,
            "RERANKQ_DATABASE_URL": database_url,
            "RERANKQ_DATA_DIR": str(self.root),
            "RERANKQ_AUTH_ENABLED": "false",
            "RERANKQ_HEARTBEAT_INTERVAL_S": "0.5",
            "RERANKQ_METRICS_PORT": str(self.metrics_port),
            "RERANKQ_SYNC_TIMEOUT_S": "300",
            "RERANKQ_SCORE_CACHE_ENABLED": "false",  # every pair must reach the model
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        })
        env.update(self.extra_env)
        return env

    def _wait_worker(self, worker, timeout_s: float = 300) -> None:
        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise BenchSystemError(f"the worker exited ({worker.returncode}); see {self.root / 'worker.log'}:\n"
                                   + log_tail(self.root / "worker.log", 30))
            if client.exists(worker_key(WORKER)):
                return
            time.sleep(0.1)
        raise BenchSystemError(f"the worker was not ready after {timeout_s:.0f}s; see {self.root / 'worker.log'}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process, timeout_s=30)
        self.processes = []

    # --- observation -------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        """The stack's processes by part (for per-process CPU figures)."""
        return dict(zip(("redis", "worker", "api"), (p.pid for p in self.processes)))

    def heartbeat(self) -> dict:
        raw = redis.Redis.from_url(self.redis_url).get(worker_key(WORKER))
        return json.loads(raw) if raw else {}

    def broker_wait(self) -> tuple[float, float]:
        """(sum, count) of the worker's publish -> task start histogram (0, 0 when absent)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return 0.0, 0.0
        values = {}
        for name in ("rerankq_queue_wait_seconds_sum", "rerankq_queue_wait_seconds_count"):
            match = re.search(rf"^{name} ([0-9.eE+-]+)$", text, re.M)
            values[name] = float(match.group(1)) if match else 0.0
        return values["rerankq_queue_wait_seconds_sum"], values["rerankq_queue_wait_seconds_count"]

    def _settled_heartbeat(self, expected_pairs: int, timeout_s: float = 10) -> dict:
        """The heartbeat once it counts `expected_pairs` (it is written every 0.5 s)."""
        deadline = time.monotonic() + timeout_s
        beat = self.heartbeat()
        while beat.get("pairs", 0) < expected_pairs and time.monotonic() < deadline:
            time.sleep(0.1)
            beat = self.heartbeat()
        return beat

    # --- load --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def warm_up(self, job: Job) -> None:
        with bench_client(self.base_url) as client:
            for _ in range(2):
                submit_and_poll(client, job)
                sync_rerank(client, job)
        self.scored_pairs += 4 * len(job.documents)

    def run(self, workload: Workload) -> SystemRun:
        """Saturation: `workload.clients` threads submit and long-poll until every job is done."""
        before = self._settled_heartbeat(self.scored_pairs)
        broker_before = self.broker_wait()
        results: list[Optional[tuple[float, float, list[float]]]] = [None] * len(workload.jobs)
        errors: list[BaseException] = []
        next_job = iter(range(len(workload.jobs)))
        lock = threading.Lock()

        def client() -> None:
            with bench_client(self.base_url) as sdk:
                while not errors:
                    with lock:
                        index = next(next_job, None)
                    if index is None:
                        return
                    try:
                        started = time.perf_counter()
                        scores = submit_and_poll(sdk, workload.jobs[index])
                        results[index] = (started, time.perf_counter(), scores)
                    except BaseException as error:  # noqa: BLE001 - reported after the threads end
                        errors.append(error)
                        return

        threads = [threading.Thread(target=client, daemon=True) for _ in range(workload.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            message = f"a client failed in workload {workload.name}: {errors[0]!r} (logs in {self.root})"
            raise BenchSystemError(message) from errors[0]
        done = [r for r in results if r is not None]
        first, last = min(r[0] for r in done), max(r[1] for r in done)
        self.scored_pairs += workload.pairs
        worker, broker_wait = self._worker_deltas(before, broker_before)
        return SystemRun(pairs=workload.pairs, seconds=last - first, latencies=[r[1] - r[0] for r in done],
                         scores=[r[2] for r in done], worker=worker, broker_wait_s=broker_wait)

    def run_latency(self, workload: Workload, direct_job: Callable[[Job], T]) -> tuple[SystemRun, list[T]]:
        """One job at a time on an idle system, each job timed three ways in turn, after a pause
        each: in this process (`direct_job`), POST /v1/jobs + long poll, POST /v1/rerank.

        Interleaved so that all three see the same machine: a shared host's speed drifts between
        runs minutes apart by about as much as the overhead being measured. Returns the system
        run and what `direct_job` returned for each job."""
        before = self._settled_heartbeat(self.scored_pairs)
        broker_before = self.broker_wait()
        direct: list[T] = []
        latencies: list[float] = []
        scores: list[list[float]] = []
        sync_latencies: list[float] = []
        with bench_client(self.base_url) as client:
            for job in workload.jobs:
                time.sleep(workload.pause_s)
                direct.append(direct_job(job))
                time.sleep(workload.pause_s)
                started = time.perf_counter()
                scores.append(submit_and_poll(client, job))
                latencies.append(time.perf_counter() - started)
                time.sleep(workload.pause_s)
                started = time.perf_counter()
                sync_rerank(client, job)
                sync_latencies.append(time.perf_counter() - started)
        self.scored_pairs += 2 * workload.pairs
        worker, broker_wait = self._worker_deltas(before, broker_before)
        run = SystemRun(pairs=workload.pairs, seconds=sum(latencies), latencies=latencies, scores=scores,
                        worker=worker, broker_wait_s=broker_wait, sync_latencies=sync_latencies)
        return run, direct

    def _worker_deltas(self, before: dict, broker_before: tuple[float, float]) -> tuple[dict, Optional[float]]:
        """What the worker counted since `before` (once its heartbeat caught up with every pair
        scored), and the mean broker wait per chunk over the same span."""
        after = self._settled_heartbeat(self.scored_pairs)
        broker_after = self.broker_wait()
        chunks = broker_after[1] - broker_before[1]
        worker = {k: after.get(k, 0) - before.get(k, 0) for k in
                  ("batches", "pairs", "real_tokens", "padded_tokens", "queue_wait_s", "waits", "waited_s")}
        return worker, (broker_after[0] - broker_before[0]) / chunks if chunks else None


def submit_and_poll(client: RerankClient, job: Job) -> list[float]:
    """POST the job, long-poll until it is done (the SDK's `wait`), return scores in document order.

    Long polling (?wait=) rather than a GET every few ms: on a 2-core machine each GET costs the
    API ~3 ms of CPU, which fast polling takes from the model; slow polling adds its interval."""
    return job_scores(client, [(job.query, job.documents)])[0]


def sync_rerank(client: RerankClient, job: Job) -> list[float]:
    """One POST /v1/rerank through the SDK; scores in document order."""
    return rerank_scores(client, job.query, job.documents)
