"""The pipeline workloads of `rerankq bench`: what the queue costs when the model is nearly free.

On a GPU the forward pass of a 10-document request takes a few milliseconds, so the HTTP,
store, broker and task machinery around it set a worker's limit. These workloads use generated
near-free models, so that only that machinery is measured:

- `ceiling`: a Qwen3 of hidden 64 and 2 layers; jobs of 10 queries x 100 documents from several
  clients (POST /v1/jobs + long poll), against plain in-process scoring of the same pairs
  (the backend's sorted batches and two-row head, without prefix reuse).
- `interactive`: a tiny BERT cross-encoder; N clients each sending synchronous 10-document
  POST /v1/rerank requests back to back (req/s, p50, p99). With `--peer infinity` the same
  requests go to Infinity on the same model directory, and a bulk run (10 queries x 100
  documents per client job) goes to both, side by side.

rerankq is driven through its SDK, as users drive it (commands/bench/clients.py); the peer
through plain HTTP. Every run records the CPU seconds of each process (API, worker, Redis, the
database server, the peer, the client) per request and per pair.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping, Optional, Sequence

import httpx

from commands.bench.clients import TIMEOUT_S, bench_client, job_scores, rerank_scores
from commands.bench.proc_cpu import StackCpu, per_unit
from commands.bench.workloads import Job, TextMaker
from core.stats import percentile
from rerankq import RerankClient

# build_tiny_qwen3's keyword arguments (ints, and a float init_range)
CEILING_MODEL: dict[str, Any] = dict(vocab_size=151_669, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=192, init_range=0.14)

PIPELINE_TARGETS = {
    "interactive_req_s_vs_peer": ("interactive: rerankq req/s >= 0.8 x Infinity's", 0.8, False),
    "interactive_p99_vs_peer": ("interactive: rerankq p99 <= 1.5 x Infinity's", 1.5, True),
    "ceiling_vs_plain": ("ceiling: system pairs/s >= 1.0 x plain in-process scoring", 1.0, False),
    "interactive_worker_cpu_outside_forward_ms": ("interactive: worker CPU outside the forward pass <= 3 ms "
                                                  "per 10-doc request", 3.0, True),
    "ceiling_worker_cpu_outside_forward_us": ("ceiling: worker CPU outside the forward pass <= 100 us per pair",
                                              100.0, True),
}


@dataclass
class Request:
    query: str
    documents: list[str]


@dataclass
class Sizes:
    clients: int
    requests: int  # interactive requests
    ceiling_jobs: int
    ceiling_clients: int
    queries_per_job: int
    docs_per_query: int
    bulk_jobs: int  # cross-encoder bulk jobs, when a peer runs


def sizes(quick: bool, clients: int, requests: Optional[int]) -> Sizes:
    if quick:
        return Sizes(clients=min(clients, 4), requests=requests or 24, ceiling_jobs=3, ceiling_clients=2,
                     queries_per_job=2, docs_per_query=20, bulk_jobs=2)
    # The bulk run was 24 jobs x 10 queries x 100 documents; a quarter of that keeps a run
    # of the pipeline workloads within a few minutes on a shared 2-core machine.
    return Sizes(clients=clients, requests=requests or 25 * clients, ceiling_jobs=6, ceiling_clients=6,
                 queries_per_job=10, docs_per_query=100, bulk_jobs=6)


# --- models and texts ------------------------------------------------------------------------
def ceiling_model(cache_dir: Path) -> Path:
    from commands.bench.model_builder import build_tiny_qwen3

    name = "qwen3-v{vocab_size}-h{hidden}-l{layers}-i{intermediate}".format(**CEILING_MODEL)
    return build_tiny_qwen3(cache_dir / name, **CEILING_MODEL)


def cross_encoder_model(cache_dir: Path) -> Path:
    from commands.bench.model_builder import build_tiny_cross_encoder

    return build_tiny_cross_encoder(cache_dir / "bert-cross-encoder-h32-l2")


def make_requests(model_dir: Path, count: int, docs: int, lo: int, hi: int, seed: int) -> list[Request]:
    """`count` queries of `docs` documents of lo..hi tokens for this model's tokenizer."""
    from transformers import AutoTokenizer

    maker = TextMaker(AutoTokenizer.from_pretrained(model_dir), seed)
    rng = random.Random(seed + 1)
    flat = maker.documents([rng.randint(lo, hi) for _ in range(count * docs)])
    return [Request(maker.query(i), flat[i * docs:(i + 1) * docs]) for i in range(count)]


# --- clients ---------------------------------------------------------------------------------
# rerankq is driven through its SDK (commands/bench/clients.py); the peer, which speaks only
# Cohere's POST /rerank, through a plain httpx client. An item is a list of requests.
Call = Callable[[Any, list[Request]], list[list[float]]]


def rerankq_client(base_url: str) -> Callable[[], RerankClient]:
    """Opens one bench client thread's SDK client of the system under test."""
    return functools.partial(bench_client, base_url)


def sdk_rerank(client: RerankClient, requests: list[Request]) -> list[list[float]]:
    """One synchronous POST /v1/rerank per request, in turn."""
    return [rerank_scores(client, request.query, request.documents) for request in requests]


def sdk_job(client: RerankClient, requests: list[Request]) -> list[list[float]]:
    """One job of several requests: POST /v1/jobs, then long polls until it is done."""
    return job_scores(client, [(request.query, request.documents) for request in requests])


def peer_client(base_url: str) -> Callable[[], httpx.Client]:
    return functools.partial(httpx.Client, base_url=base_url, timeout=TIMEOUT_S)


def peer_rerank(path: str) -> Call:
    """One synchronous POST to the peer's rerank path per request, in turn."""

    def call(http: httpx.Client, requests: list[Request]) -> list[list[float]]:
        out = []
        for request in requests:
            response = http.post(path, json={"query": request.query, "documents": request.documents,
                                             "return_documents": False})
            if response.status_code != 200:
                raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
            scores = [0.0] * len(request.documents)
            for item in response.json()["results"]:
                scores[item["index"]] = item["relevance_score"]
            out.append(scores)
        return out

    return call


@dataclass
class Drive:
    seconds: float
    latencies: list[float]
    scores: list[list[list[float]]]


@contextlib.contextmanager
def opened(connect: Callable[[], ContextManager[Any]], count: int) -> Iterator[list[Any]]:
    """`count` clients, opened once and reused by every drive: each builds its TLS context and
    connection pool when opened (tens of ms of CPU), which a client process does once, so none
    is opened inside a measured run."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(connect()) for _ in range(count)]


def drive(clients: Sequence[Any], items: list[list[Request]], call: Call) -> Drive:
    """One thread per client (from `opened`) takes the next item and calls it until none is
    left; each item timed."""
    results: list[Optional[tuple[float, float, Any]]] = [None] * len(items)
    errors: list[BaseException] = []
    next_item = iter(range(len(items)))
    lock = threading.Lock()

    def client(http: Any) -> None:
        while not errors:
            with lock:
                index = next(next_item, None)
            if index is None:
                return
            try:
                started = time.perf_counter()
                scores = call(http, items[index])
                results[index] = (started, time.perf_counter(), scores)
            except BaseException as error:  # noqa: BLE001 - raised after the threads end
                errors.append(error)
                return

    threads = [threading.Thread(target=client, args=(http,), daemon=True) for http in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a bench client failed: {errors[0]!r}") from errors[0]
    done = [r for r in results if r is not None]
    return Drive(seconds=max(r[1] for r in done) - min(r[0] for r in done),
                 latencies=[r[1] - r[0] for r in done], scores=[r[2] for r in done])


# --- figures ---------------------------------------------------------------------------------
def inference_seconds(metrics_port: int) -> Optional[float]:
    """The worker's summed forward-pass time (rerankq_inference_duration_seconds_sum)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    match = re.search(r"^rerankq_inference_duration_seconds_sum ([0-9.eE+-]+)$", text, re.M)
    return float(match.group(1)) if match else None


def _ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(1000 * value, 1)


def measured_row(workload: str, server: str, database: Optional[str], clients: int, items: list[list[Request]],
                 run: Drive, cpu_s: dict[str, float]) -> dict[str, Any]:
    requests = sum(len(item) for item in items)
    pairs = sum(len(r.documents) for item in items for r in item)
    return {
        "workload": workload, "server": server, "database": database, "clients": clients,
        "requests": requests, "pairs": pairs, "seconds": round(run.seconds, 3),
        "req_per_s": round(requests / run.seconds, 1), "pairs_per_s": round(pairs / run.seconds, 1),
        "latency_p50_ms": _ms(percentile(run.latencies, 50)), "latency_p99_ms": _ms(percentile(run.latencies, 99)),
        "latency_mean_ms": _ms(statistics.mean(run.latencies)),
        **per_unit(cpu_s, requests, pairs),
    }


def max_diff(a: list[list[list[float]]], b: list[list[list[float]]]) -> Optional[float]:
    flat_a = [s for item in a for row in item for s in row]
    flat_b = [s for item in b for row in item for s in row]
    return round(max(abs(x - y) for x, y in zip(flat_a, flat_b)), 8) if flat_a and flat_b else None


# --- the runs --------------------------------------------------------------------------------
class PipelineBench:
    def __init__(self, options: Any, databases: Any) -> None:
        self.options = options
        self.databases = databases
        self.log = options.log
        self.sizes = sizes(options.quick, options.clients, options.requests)
        self.peer_error: Optional[str] = None

    def system(self, model_dir: Path, root: Path, name: str, stack: contextlib.ExitStack):
        from commands.bench.system import LocalSystem

        url = self.databases.url_for(name)
        self.log(f"bench: starting redis, worker and API for {name} ({self.databases.label}) in {root}")
        # A shared machine may be slow enough for a chunk to wait past the default 90 s deadline
        # behind a deep bulk queue; the bench measures throughput, not that deadline.
        slow_host = {"RERANKQ_CHUNK_DEADLINE_S": "600", "RERANKQ_VISIBILITY_TIMEOUT_S": "1800"}
        system = stack.enter_context(LocalSystem(model_dir, self.options.max_length, root, self.options.device,
                                                 extra_env=slow_host, database_url=url))
        return system

    def measure(self, parts: Mapping[str, Optional[int]], action: Callable[[], Drive]) -> tuple[Drive, dict]:
        import os

        meter = StackCpu({**parts, "client": os.getpid()})
        before = meter.snapshot()
        run = action()
        return run, meter.since(before)

    def stack_parts(self, system) -> dict[str, Optional[int]]:
        return {**system.pids(), "database": self.databases.pid}

    def ceiling(self, root: Path) -> list[dict]:
        """Bulk jobs on a near-free Qwen3: the system against plain in-process scoring."""
        from commands.bench.direct import load_backend, score_jobs
        from core.settings import Settings
        from workers.batch_plan import max_tokens_for

        s, options = self.sizes, self.options
        model_dir = ceiling_model(options.cache_dir)
        flat = make_requests(model_dir, s.ceiling_jobs * s.queries_per_job, s.docs_per_query, 20, 80, options.seed + 30)
        items = [flat[i * s.queries_per_job:(i + 1) * s.queries_per_job] for i in range(s.ceiling_jobs)]
        settings = Settings()
        backend = load_backend(model_dir, options.max_length, options.device, prefix_reuse=False)
        max_tokens = max_tokens_for(settings.max_batch_tokens, backend.info.device)
        jobs = [Job(r.query, r.documents) for r in flat]

        def plain() -> Drive:
            run = score_jobs(backend, jobs, max_tokens, settings.max_batch_pairs, settings.batch_overhead_tokens)
            return Drive(run.seconds, [run.seconds], [run.scores])

        rows = []
        with contextlib.ExitStack() as stack:
            system = self.system(model_dir, root / "ceiling", "ceiling", stack)
            clients = stack.enter_context(opened(rerankq_client(system.base_url), s.ceiling_clients))
            sdk_job(clients[0], items[0][:1])  # warm-up
            self.log(f"bench: ceiling plain in-process ({sum(len(r.documents) for r in flat)} pairs)")
            direct_runs = [self.measure({}, plain)]
            self.log(f"bench: ceiling system ({len(items)} jobs, {s.ceiling_clients} clients)")
            inference_before = inference_seconds(system.metrics_port)
            run, cpu = self.measure(self.stack_parts(system), lambda: drive(clients, items, sdk_job))
            inference = _delta(inference_seconds(system.metrics_port), inference_before)
            self.log("bench: ceiling plain in-process again")
            direct_runs.append(self.measure({}, plain))
        best_direct, direct_cpu = min(direct_runs, key=lambda r: r[0].seconds)
        direct_row = measured_row("ceiling", "plain", None, 1, items, best_direct, direct_cpu)
        direct_row["runs_pairs_per_s"] = [round(direct_row["pairs"] / r[0].seconds, 1) for r in direct_runs]
        row = measured_row("ceiling", "rerankq", self.databases.label, s.ceiling_clients, items, run, cpu)
        row["forward_s"] = inference
        row["max_score_diff_vs_plain"] = max_diff(run.scores, _regroup(best_direct.scores[0], items))
        _outside_forward(row)
        rows += [row, direct_row]
        return rows

    def interactive(self, root: Path) -> list[dict]:
        """Sync 10-doc requests from N clients; with a peer, the same and a bulk run against it."""
        s, options = self.sizes, self.options
        model_dir = cross_encoder_model(options.cache_dir)
        flat = make_requests(model_dir, s.requests + s.clients, 10, 8, 40, options.seed + 40)
        warm, items = [[r] for r in flat[: s.clients]], [[r] for r in flat[s.clients:]]
        bulk_flat = make_requests(model_dir, s.bulk_jobs * s.queries_per_job, s.docs_per_query, 8, 40,
                                  options.seed + 50) if options.peer else []
        bulk = [bulk_flat[i * s.queries_per_job:(i + 1) * s.queries_per_job] for i in range(s.bulk_jobs)
                if bulk_flat]  # bulk-ce runs only beside a peer
        bulk_clients = s.ceiling_clients
        rows: list[dict] = []
        with contextlib.ExitStack() as stack:
            system = self.system(model_dir, root / "interactive", "interactive", stack)
            parts = self.stack_parts(system)
            clients = stack.enter_context(opened(rerankq_client(system.base_url), max(s.clients, bulk_clients)))
            drive(clients[:s.clients], warm, sdk_rerank)
            self.log(f"bench: interactive rerankq ({len(items)} sync requests, {s.clients} clients)")
            inference_before = inference_seconds(system.metrics_port)
            run, cpu = self.measure(parts, lambda: drive(clients[:s.clients], items, sdk_rerank))
            row = measured_row("interactive", "rerankq", self.databases.label, s.clients, items, run, cpu)
            row["forward_s"] = _delta(inference_seconds(system.metrics_port), inference_before)
            _outside_forward(row)
            rows.append(row)
            ours = run
            if bulk:
                self.log(f"bench: bulk rerankq ({len(bulk)} jobs, {bulk_clients} clients)")
                bulk_run, cpu = self.measure(parts, lambda: drive(clients[:bulk_clients], bulk, sdk_job))
                rows.append(measured_row("bulk-ce", "rerankq", self.databases.label, bulk_clients, bulk, bulk_run, cpu))
        if options.peer:
            from commands.bench.peer import PeerError

            try:
                rows += self.peer_rows(model_dir, root, warm, items, bulk, bulk_clients, ours)
            except PeerError as error:  # rerankq's own figures still count; the table says the peer failed
                self.log(f"bench: the {options.peer} peer failed: {error}")
                self.peer_error = str(error)
        return rows

    def peer_rows(self, model_dir: Path, root: Path, warm, items, bulk, bulk_clients, ours: Drive) -> list[dict]:
        from commands.bench.peer import InfinityPeer

        s = self.sizes
        self.log(f"bench: starting the {self.options.peer} peer from {self.options.peer_venv}")
        root.mkdir(parents=True, exist_ok=True)
        with InfinityPeer(self.options.peer_venv, model_dir, root / "peer.log", self.options.device) as peer, \
                opened(peer_client(peer.base_url), max(s.clients, bulk_clients)) as clients:
            call = peer_rerank(peer.rerank_path)
            drive(clients[:s.clients], warm, call)
            self.log(f"bench: interactive {peer.name} ({len(items)} requests, {s.clients} clients)")
            run, cpu = self.measure(peer.pids(), lambda: drive(clients[:s.clients], items, call))
            row = measured_row("interactive", peer.name, None, s.clients, items, run, cpu)
            row["max_score_diff_vs_rerankq"] = max_diff(run.scores, ours.scores)
            rows = [row]
            if bulk:
                self.log(f"bench: bulk {peer.name} ({len(bulk)} jobs, {bulk_clients} clients)")
                bulk_run, cpu = self.measure(peer.pids(), lambda: drive(clients[:bulk_clients], bulk, call))
                rows.append(measured_row("bulk-ce", peer.name, None, bulk_clients, bulk, bulk_run, cpu))
        return rows

    def run(self, root: Path) -> dict[str, Any]:
        rows: list[dict] = []
        if "ceiling" in self.options.workloads:
            rows += self.ceiling(root)
        if "interactive" in self.options.workloads:
            rows += self.interactive(root)
        return {"database": self.databases.label, "peer": self.options.peer, "peer_error": self.peer_error,
                "rows": rows, "targets": evaluate(rows)}


def _delta(after: Optional[float], before: Optional[float]) -> Optional[float]:
    return round(after - before, 4) if after is not None and before is not None else None


def _regroup(flat_scores: list[list[float]], items: list[list[Request]]) -> list[list[list[float]]]:
    """Plain scoring returns one row per query; group them like the jobs."""
    out, at = [], 0
    for item in items:
        out.append(flat_scores[at: at + len(item)])
        at += len(item)
    return out


def _outside_forward(row: dict) -> None:
    """Worker CPU minus its forward passes' wall time (CPU threads: an estimate), per request and pair."""
    forward, worker = row.get("forward_s"), row["cpu_s"].get("worker")
    if forward is None or worker is None:
        return
    outside = max(0.0, worker - forward)
    row["worker_outside_forward_ms_per_request"] = round(1000 * outside / row["requests"], 2)
    row["worker_outside_forward_us_per_pair"] = round(1e6 * outside / row["pairs"], 1)


def _find(rows: list[dict], workload: str, server: str) -> dict:
    return next((r for r in rows if r["workload"] == workload and r["server"] == server), {})


def evaluate(rows: list[dict]) -> dict[str, dict]:
    ours, peer = _find(rows, "interactive", "rerankq"), next(
        (r for r in rows if r["workload"] == "interactive" and r["server"] not in ("rerankq", "plain")), {})
    ceiling, plain = _find(rows, "ceiling", "rerankq"), _find(rows, "ceiling", "plain")
    measured = {
        "interactive_req_s_vs_peer": _ratio(ours.get("req_per_s"), peer.get("req_per_s")),
        "interactive_p99_vs_peer": _ratio(ours.get("latency_p99_ms"), peer.get("latency_p99_ms")),
        "ceiling_vs_plain": _ratio(ceiling.get("pairs_per_s"), plain.get("pairs_per_s")),
        "interactive_worker_cpu_outside_forward_ms": ours.get("worker_outside_forward_ms_per_request"),
        "ceiling_worker_cpu_outside_forward_us": ceiling.get("worker_outside_forward_us_per_pair"),
    }
    out = {}
    for key, (text, limit, lower_is_better) in PIPELINE_TARGETS.items():
        value = measured[key]
        met = None if value is None else (value <= limit if lower_is_better else value >= limit)
        out[key] = {"target": text, "limit": limit, "measured": value, "met": met}
    return out


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a and b else None


PARTS = ("api", "worker", "redis", "database", "peer", "client", "total")


def format_pipeline(result: dict[str, Any]) -> str:
    """The side-by-side table, then CPU per request (ms) and per pair (µs) for each process."""
    rows = result["rows"]
    head = (f"{'pipeline':>11} {'server':>9} {'db':>10} {'reqs':>5} {'pairs':>6} {'req/s':>7} {'pairs/s':>8} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'outside fwd':>11}")
    lines = [head]
    for r in rows:
        outside = r.get("worker_outside_forward_ms_per_request")
        outside_text = "-" if outside is None else (f"{outside:.1f}ms/r" if r["workload"] == "interactive"
                                                     else f"{r['worker_outside_forward_us_per_pair']:.0f}us/p")
        lines.append(f"{r['workload']:>11} {r['server']:>9} {r['database'] or '-':>10} {r['requests']:>5} "
                     f"{r['pairs']:>6} {r['req_per_s']:>7.1f} {r['pairs_per_s']:>8.1f} "
                     f"{r['latency_p50_ms'] if r['server'] != 'plain' else '-':>7} "
                     f"{r['latency_p99_ms'] if r['server'] != 'plain' else '-':>7} {outside_text:>11}")
    lines.append("")
    lines.append("CPU per request (ms) | per pair (us), by process:")
    lines.append(f"{'pipeline':>11} {'server':>9} " + " ".join(f"{p:>15}" for p in PARTS))
    for r in rows:
        cells = []
        for part in PARTS:
            ms, us = r["ms_per_request"].get(part), r["us_per_pair"].get(part)
            cells.append(f"{'-' if ms is None else f'{ms:.2f} | {us:.0f}':>15}")
        lines.append(f"{r['workload']:>11} {r['server']:>9} " + " ".join(cells))
    if result.get("peer_error"):
        lines.append(f"the {result['peer']} peer failed: {result['peer_error'].splitlines()[0]}")
    lines.append("")
    for target in result["targets"].values():
        mark = {True: "MET ", False: "MISS", None: "n/a "}[target["met"]]
        lines.append(f"[{mark}] {target['target']}: measured {target['measured']}")
    return "\n".join(lines)
