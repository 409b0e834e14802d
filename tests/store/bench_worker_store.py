"""How much of the worker's CPU goes to SQL, under load, on a near-free model.

    python -m tests.store.bench_worker_store [--regime interactive|bulk] [--database-url URL|postgres]
                                             [--profile OUT.txt]

Starts a real stack (redis-server, one worker, the API) on a tiny cross-encoder built here, sends
10-document `POST /v1/rerank` requests from 16 concurrent clients (interactive) or jobs of
10 queries x 100 documents (bulk), and prints the worker's CPU per request and per pair. With
`--profile`, py-spy (`pip install py-spy`) samples the worker meanwhile, and the samples are split
into SQL (store/ and SQLAlchemy/driver frames), model, Redis, Celery and the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from commands.bench.databases import Databases
from tests.support.stack import RedisProcess, Stack

# First match wins, tested against the whole stack of a sample (innermost frames last).
CATEGORIES = [
    ("sql", ("(store/", "/store/", "sqlalchemy", "sqlite3", "psycopg")),
    ("model", ("(models/", "/models/", "torch", "transformers", "tokenizers")),
    ("redis", ("redis/",)),
    ("celery", ("celery", "kombu", "billiard")),
]

# Leaf frames of a thread that is waiting, not running: py-spy's own idle detection does not work in
# every container, so these samples are dropped by name (locks, queues, polls, socket reads, sleeps).
IDLE_LEAVES = ("Condition.wait", "Event.wait", "_epoll.poll", "select (", "_read_from_socket", "sleep (",
               "_worker (concurrent/futures/thread.py", "GroupCommitter._loop", "Batcher._watchdog",
               "Heartbeat._loop", "Batcher._wait", "Connection.wait (psycopg")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def classify(collapsed: Path) -> Counter:
    """Samples per category from py-spy's raw (collapsed) output."""
    counts: Counter = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        # Attribute a sample to its innermost known layer (a model call under store code is model).
        frames = stack.split(";")
        if any(mark in frames[-1] for mark in IDLE_LEAVES):
            continue
        category = "other"
        for frame in reversed(frames):
            hit = next((name for name, marks in CATEGORIES if any(m in frame for m in marks)), None)
            if hit:
                category = hit
                break
        # Work done for the store inside our own code (e.g. packing scores) counts as SQL.
        if category == "other" and any("(store/" in f or "/store/" in f for f in frames):
            category = "sql"
        counts[category] += int(n)
    return counts


def interactive_load(client_url: str, n_requests: int, clients: int, docs: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(range(n_requests))

    def run() -> None:
        with httpx.Client(base_url=client_url, timeout=120) as http:
            for i in todo:
                body = {"query": f"query {i} about topic {i % 7}",
                        "documents": [f"document {j} of request {i}, some words here" for j in range(docs)]}
                start = time.perf_counter()
                response = http.post("/v1/rerank", json=body)
                response.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def bulk_load(client_url: str, n_jobs: int, clients: int, queries: int, docs: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(range(n_jobs))

    def run() -> None:
        with httpx.Client(base_url=client_url, timeout=120) as http:
            for i in todo:
                body = {"requests": [{"query": f"query {i}.{q}",
                                      "documents": [f"document {j} for {i}.{q} with a few words" for j in range(docs)]}
                                     for q in range(queries)]}
                start = time.perf_counter()
                job = http.post("/v1/jobs", json=body).json()["id"]
                while http.get(f"/v1/jobs/{job}", params={"wait": 30}).json()["status"] not in (
                        "succeeded", "failed", "cancelled"):
                    pass
                with lock:
                    latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regime", choices=["interactive", "bulk"], default="interactive")
    parser.add_argument("--requests", type=int, default=400, help="sync requests (interactive) or jobs (bulk)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", default="", help="empty: SQLite; 'postgres': a throwaway local cluster")
    parser.add_argument("--profile", type=Path, help="write py-spy's collapsed stacks here and split them")
    parser.add_argument("--env", action="append", default=[], metavar="RERANKQ_X=V", help="extra worker/API setting")
    options = parser.parse_args()

    from commands.bench.model_builder import build_tiny_cross_encoder

    root = Path(tempfile.mkdtemp(prefix="rerankq-store-bench-"))
    cleanup = contextlib.ExitStack()  # stops the throwaway cluster of --database-url postgres
    stack = None
    spy = None
    try:
        model = build_tiny_cross_encoder(root / "model")
        url = Databases(options.database_url, cleanup).url_for("bench")
        redis = RedisProcess(root / "redis").start()
        stack = Stack(root=root, redis=redis, database_url=url or f"sqlite:///{root / 'rerankq.db'}", model_dir=model,
                      extra_env={"RERANKQ_SYNC_TIMEOUT_S": "120", "RERANKQ_MAX_QUEUE_DEPTH": "100000",
                                 "RERANKQ_MAX_BATCH_WAIT_MS": "5", **dict(kv.split("=", 1) for kv in options.env)})
        stack.migrate()
        worker = stack.start_worker("bench")
        stack.start_api()
        if options.regime == "interactive":
            interactive_load(stack.base_url, 32, 8, 10)  # warm-up
        else:
            bulk_load(stack.base_url, 2, 2, 10, 100)
        if options.profile:
            py_spy = shutil.which("py-spy") or str(Path(os.sys.executable).with_name("py-spy"))
            spy = subprocess.Popen([py_spy, "record", "--pid", str(worker.pid), "--rate", "250", "--format", "raw",
                                    "--nonblocking", "-o", str(options.profile)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
        cpu_before, start = cpu_seconds(worker.pid), time.perf_counter()
        if options.regime == "interactive":
            latencies = interactive_load(stack.base_url, options.requests, options.clients, 10)
            pairs = options.requests * 10
        else:
            latencies = bulk_load(stack.base_url, options.requests, min(options.clients, 6), 10, 100)
            pairs = options.requests * 1000
        elapsed, cpu = time.perf_counter() - start, cpu_seconds(worker.pid) - cpu_before
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        latencies.sort()
        print(f"regime {options.regime}, store {'postgresql' if 'postgres' in stack.database_url else 'sqlite'}: "
              f"{options.requests} {'requests' if options.regime == 'interactive' else 'jobs'}, {pairs} pairs "
              f"in {elapsed:.1f}s = {options.requests / elapsed:.1f}/s, {pairs / elapsed:.0f} pairs/s; "
              f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p99 {latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000:.0f} ms")
        print(f"worker CPU: {cpu:.2f}s = {cpu / options.requests * 1000:.2f} ms per "
              f"{'request' if options.regime == 'interactive' else 'job'}, {cpu / pairs * 1000:.3f} ms per pair")
        if options.profile and options.profile.exists():
            counts = classify(options.profile)
            total = sum(counts.values()) or 1
            shares = {name: counts[name] / total for name in ("sql", "model", "redis", "celery", "other")}
            print("worker profile (py-spy, running samples): " +
                  ", ".join(f"{name} {share:.0%}" for name, share in shares.items()))
            print(f"SQL share of worker CPU: about {shares['sql'] * cpu / options.requests * 1000:.2f} ms per "
                  f"{'request' if options.regime == 'interactive' else 'job'}, "
                  f"{shares['sql'] * cpu / pairs * 1000:.4f} ms per pair")
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        if stack is not None:
            stack.stop()
        cleanup.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
