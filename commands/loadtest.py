"""A bounded load test against a running service: many clients submit and poll for a fixed time.

It reports what a user must be able to trust: every accepted job completes (lost = 0), and no
result set holds a document twice (duplicated = 0), with client-observed latency percentiles.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

from core.stats import percentile
from rerankq import JobCancelled, JobFailed, JobTimeout, JobView, Overloaded, RerankClient, RerankError


@dataclass
class LoadReport:
    clients: int
    duration_s: float
    submitted: int = 0
    accepted: int = 0
    rejected_429: int = 0
    errors: int = 0  # submissions answered neither 202 nor 429 (or not at all): counted, never dropped
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    jobs_per_s: float = 0.0
    first_error: Optional[str] = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        body = asdict(self)
        body.pop("latencies_ms")
        return body


def _check_result(job: JobView, n_docs: int) -> bool:
    """True when every document appears exactly once in the job's result set."""
    indexes = [r.index for r in (job.results or [])[0].results] if job.results else []
    return sorted(indexes) == list(range(n_docs))


def run_load(base_url: str, *, clients: int = 8, duration_s: float = 10.0, docs_per_job: int = 10,
             api_key: Optional[str] = None, drain_timeout_s: float = 120.0, seed: int = 0) -> LoadReport:
    """Submit jobs from `clients` threads for `duration_s`, then wait (bounded) for all to finish.

    It drives the service through the SDK as users do, with the SDK's own retries off, so every 429
    is seen and counted here (then honoured: the client sleeps its Retry-After)."""
    report = LoadReport(clients=clients, duration_s=duration_s)
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s

    def one_client(index: int) -> None:
        rng = random.Random(seed + index)
        with RerankClient(base_url, api_key=api_key, timeout=60, max_retries=0) as client:
            while time.monotonic() < stop_at:
                docs = [f"document {rng.random():.6f} about topic {d}" for d in range(docs_per_job)]
                started = time.monotonic()
                with lock:
                    report.submitted += 1
                try:
                    job_id = client.submit([{"query": f"query {index}", "documents": docs}]).id
                except Overloaded as overloaded:
                    with lock:
                        report.rejected_429 += 1
                    time.sleep(overloaded.retry_after or 1.0)
                    continue
                except RerankError as error:
                    _count_error(report, lock, f"POST /v1/jobs: {type(error).__name__}: {error}")
                    continue
                with lock:
                    report.accepted += 1
                _follow(client, job_id, started, docs_per_job, report, lock, time.monotonic() + drain_timeout_s)

    threads = [threading.Thread(target=one_client, args=(i,), daemon=True) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=duration_s + drain_timeout_s + 30)
    elapsed = time.monotonic() - began
    report.lost = report.accepted - report.completed - report.failed
    report.p50_ms = percentile(report.latencies_ms, 50) or 0.0
    report.p99_ms = percentile(report.latencies_ms, 99) or 0.0
    report.jobs_per_s = report.completed / elapsed if elapsed else 0.0
    return report


def _count_error(report: LoadReport, lock: threading.Lock, message: str) -> None:
    with lock:
        report.errors += 1
        if report.first_error is None:
            report.first_error = message
    time.sleep(0.1)


def _follow(client: RerankClient, job_id: str, started: float, n_docs: int, report: LoadReport,
            lock: threading.Lock, give_up_at: float) -> None:
    """Long-poll an accepted job until it finishes or time is up; transient errors are retried, since
    an accepted job must be followed to its end (one still unfinished then counts as lost)."""
    while (remaining := give_up_at - time.monotonic()) > 0:
        try:
            job = client.wait(job_id, timeout=remaining)
        except (JobFailed, JobCancelled):
            with lock:
                report.failed += 1
            return
        except JobTimeout:
            return
        except RerankError:
            time.sleep(0.2)
            continue
        with lock:
            report.completed += 1
            report.latencies_ms.append((time.monotonic() - started) * 1000)
            report.duplicated += 0 if _check_result(job, n_docs) else 1
        return
def format_report(report: LoadReport) -> str:
    rows = report.summary()
    width = max(map(len, rows))
    return "\n".join(f"{k.ljust(width)}  {v:.1f}" if isinstance(v, float) else f"{k.ljust(width)}  {v}"
                     for k, v in rows.items())
