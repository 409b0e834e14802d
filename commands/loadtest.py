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

import httpx

from core.stats import percentile


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


def _check_result(job: dict, n_docs: int) -> bool:
    """True when every document appears exactly once in the job's result set."""
    indexes = [r["index"] for r in job["results"][0]["results"]]
    return sorted(indexes) == list(range(n_docs))


def run_load(base_url: str, *, clients: int = 8, duration_s: float = 10.0, docs_per_job: int = 10,
             api_key: Optional[str] = None, drain_timeout_s: float = 120.0, poll_interval_s: float = 0.05,
             seed: int = 0) -> LoadReport:
    """Submit jobs from `clients` threads for `duration_s`, then wait (bounded) for all to finish."""
    report = LoadReport(clients=clients, duration_s=duration_s)
    lock = threading.Lock()
    stop_at = time.monotonic() + duration_s
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def one_client(index: int) -> None:
        rng = random.Random(seed + index)
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            while time.monotonic() < stop_at:
                docs = [f"document {rng.random():.6f} about topic {d}" for d in range(docs_per_job)]
                started = time.monotonic()
                with lock:
                    report.submitted += 1
                try:
                    response = client.post("/v1/jobs", json={"requests": [{"query": f"query {index}",
                                                                          "documents": docs}]})
                except httpx.HTTPError as error:
                    _count_error(report, lock, f"POST /v1/jobs: {type(error).__name__}: {error}")
                    continue
                if response.status_code == 429:
                    with lock:
                        report.rejected_429 += 1
                    time.sleep(float(response.headers.get("retry-after", "1")))
                    continue
                if response.status_code != 202:
                    _count_error(report, lock, f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
                    continue
                with lock:
                    report.accepted += 1
                _follow(client, response.json()["id"], started, docs_per_job, report, lock,
                        time.monotonic() + drain_timeout_s, poll_interval_s)

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


def _follow(client: httpx.Client, job_id: str, started: float, n_docs: int, report: LoadReport,
            lock: threading.Lock, give_up_at: float, poll_interval_s: float) -> None:
    while time.monotonic() < give_up_at:
        try:
            job = client.get(f"/v1/jobs/{job_id}", params={"wait": 10}).json()
        except httpx.HTTPError:
            time.sleep(poll_interval_s)  # an accepted job is followed until it finishes or time is up
            continue
        if job["status"] == "succeeded":
            with lock:
                report.completed += 1
                report.latencies_ms.append((time.monotonic() - started) * 1000)
                report.duplicated += 0 if _check_result(job, n_docs) else 1
            return
        if job["status"] in ("failed", "cancelled"):
            with lock:
                report.failed += 1
            return
        time.sleep(poll_interval_s)


def format_report(report: LoadReport) -> str:
    rows = report.summary()
    width = max(map(len, rows))
    return "\n".join(f"{k.ljust(width)}  {v:.1f}" if isinstance(v, float) else f"{k.ljust(width)}  {v}"
                     for k, v in rows.items())
