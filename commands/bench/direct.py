"""Direct mode: the project's own backend in this process, on every pair, batched like the worker.

This is the limit the system is measured against: the same tokenizer, prompt, two-row head,
prefix reuse and batch former (workers.batcher.plan_batches) as a worker, with no queue, HTTP
or store around it. Tokenization is timed too: the worker does it as well.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from commands.bench.workloads import Job, Workload
from models.base import Pair
from models.prefix_cache import batch_cost


@dataclass
class DirectRun:
    pairs: int
    seconds: float
    scores: list[list[float]]  # per job, in document order
    batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    job_seconds: list[float] = field(default_factory=list)  # latency workloads: each job alone
    other_load_cores: Optional[float] = None  # CPU cores other processes used meanwhile (hostload)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0

    @property
    def mean_batch(self) -> float:
        return self.pairs / self.batches if self.batches else 0.0

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.padded_tokens if self.padded_tokens else 1.0


def load_backend(model_dir: Path, max_length: int, device: str = "auto", prefix_reuse: bool = True) -> Any:
    """The backend exactly as a worker loads it (models.loading), warmed with one pair."""
    from core.settings import Settings
    from models.loading import load_backend as load

    settings = Settings(model=str(model_dir), max_length=max_length, device=device, prefix_reuse=prefix_reuse)
    backend = load(settings)
    backend.score([Pair("warm-up", "warm-up document")])
    return backend


def score_jobs(backend: Any, jobs: list[Job], max_tokens: int, max_pairs: int,
               overhead_tokens: Optional[int] = None) -> DirectRun:
    """Every pair of `jobs` pending at once: one encode, the worker's batches, one pass each."""
    from workers.batch_plan import overhead_tokens_for, plan_batches

    started = time.perf_counter()
    pairs = [Pair(job.query, doc) for job in jobs for doc in job.documents]
    encoded = backend.encode(pairs)
    share = bool(getattr(backend, "shares_prefix", False))
    flat: list[float] = [0.0] * len(pairs)
    run = DirectRun(len(pairs), 0.0, [])
    overhead = overhead_tokens_for(overhead_tokens, backend.info.device)
    for rows in plan_batches(encoded, max_tokens, max_pairs, share, overhead):
        batch = [encoded[i] for i in rows]
        for i, score in zip(rows, backend.score_encoded(batch)):
            flat[i] = score
        real, padded = batch_cost(batch, share)
        run.batches += 1
        run.real_tokens += real
        run.padded_tokens += padded
    run.seconds = time.perf_counter() - started
    at = 0
    for job in jobs:
        run.scores.append(flat[at: at + len(job.documents)])
        at += len(job.documents)
    return run


def run_direct(backend: Any, workload: Workload, max_tokens: int, max_pairs: int,
               overhead_tokens: Optional[int] = None) -> DirectRun:
    """Saturation workloads: all jobs at once. Latency workloads: each job alone, timed."""
    if not workload.latency_mode:
        return score_jobs(backend, workload.jobs, max_tokens, max_pairs, overhead_tokens)
    return one_job_each([score_jobs(backend, [job], max_tokens, max_pairs, overhead_tokens) for job in workload.jobs])


def one_job_each(runs: list[DirectRun]) -> DirectRun:
    """Single-job runs as one latency run: their times summed, each job's time kept."""
    total = DirectRun(sum(r.pairs for r in runs), 0.0, [])
    for one in runs:
        total.seconds += one.seconds
        total.job_seconds.append(one.seconds)
        total.scores.extend(one.scores)
        total.batches += one.batches
        total.real_tokens += one.real_tokens
        total.padded_tokens += one.padded_tokens
    return total
