"""The invariants a soak must end with, read from the store and the broker after the load drained."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from sqlalchemy import select

from commands.soak.load import LoadRecord
from core.stats import percentile
from models.base import Pair
from rerankq.schemas import ACTIVE_STATUSES, JobStatus
from store.db import session_scope
from store.jobs import request_results
from store.tables import Job, JobRequest

SCORE_TOLERANCE = 1e-5  # float32 on CPU: the exactness target


@dataclass
class Verdict:
    jobs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    not_terminal: list[str] = field(default_factory=list)
    accepted_missing: list[str] = field(default_factory=list)  # a 202 the store does not know
    unexpected_failures: list[str] = field(default_factory=list)
    poison_not_failed: list[str] = field(default_factory=list)
    cancel_not_kept: list[str] = field(default_factory=list)
    wrong_results: list[str] = field(default_factory=list)  # a document missing, doubled, or off its score
    queued_left: int = 0
    pairs_checked: int = 0
    max_score_error: float = 0.0

    @property
    def lost(self) -> int:
        return len(self.not_terminal) + len(self.accepted_missing)

    @property
    def holds(self) -> bool:
        return not (self.not_terminal or self.accepted_missing or self.unexpected_failures or self.poison_not_failed
                    or self.cancel_not_kept or self.wrong_results or self.queued_left)


def broker_backlog(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        queued = sum(client.llen(key) for key in client.scan_iter(match="rerankq.*") if client.type(key) == b"list")
        return queued + client.hlen("unacked")
    finally:
        client.close()


def check(database_url: str, redis_url: str, record: LoadRecord, backend) -> Verdict:
    verdict = Verdict(queued_left=broker_backlog(redis_url))
    with session_scope(database_url) as session:
        jobs = session.scalars(select(Job)).all()
        known = {job.id for job in jobs}
        verdict.jobs = len(jobs)
        verdict.accepted_missing = sorted(set(record.accepted) - known)
        for job in jobs:
            verdict.by_status[job.status] = verdict.by_status.get(job.status, 0) + 1
            if job.status in ACTIVE_STATUSES:
                verdict.not_terminal.append(job.id)
            if job.id in record.poison:
                if job.status != JobStatus.failed.value:
                    verdict.poison_not_failed.append(job.id)
                continue
            if job.status == JobStatus.failed.value:
                verdict.unexpected_failures.append(f"{job.id}: {job.error}")
            if job.id in record.cancelled and job.status != JobStatus.cancelled.value:
                verdict.cancel_not_kept.append(job.id)
            if job.status == JobStatus.succeeded.value:
                _check_scores(session, job, backend, verdict)
    return verdict


def _check_scores(session, job: Job, backend, verdict: Verdict) -> None:
    requests = session.scalars(select(JobRequest).where(JobRequest.job_id == job.id)
                               .order_by(JobRequest.request_idx)).all()
    for request, result in zip(requests, request_results(session, job)):
        texts = request.documents
        indexes = sorted(r.index for r in result.results)
        if indexes != list(range(len(texts))):
            verdict.wrong_results.append(f"{job.id}/{request.request_idx}: documents {indexes}")
            continue
        expected = backend.score([Pair(request.query, text, request.instruction) for text in texts])
        got = {r.index: r.relevance_score for r in result.results}
        error = max(abs(got[i] - e) for i, e in enumerate(expected))
        verdict.pairs_checked += len(texts)
        verdict.max_score_error = max(verdict.max_score_error, error)
        if error > SCORE_TOLERANCE:
            verdict.wrong_results.append(f"{job.id}/{request.request_idx}: score off by {error:.2e}")


def latency_split(record: LoadRecord, windows: list[tuple[float, float]]) -> dict[str, float | None]:
    """p50/p99 of answered calls that started during a fault (until its recovery) and outside."""
    during: list[float] = []
    calm: list[float] = []
    for started, seconds in record.latencies:
        (during if any(a <= started <= b for a, b in windows) else calm).append(seconds)
    return {"p50_during_faults_s": percentile(during, 50), "p99_during_faults_s": percentile(during, 99),
            "p50_calm_s": percentile(calm, 50), "p99_calm_s": percentile(calm, 99)}
