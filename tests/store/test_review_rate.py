"""The overview's low-confidence rate: flags and scored requests on one time base, so never above 100%."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.review_stats import overview
from store.tables import LowConfidenceCase

NOW = datetime(2026, 3, 4, 11, 30, tzinfo=timezone.utc)


def add_job(url: str, submitted: datetime, status: str, n_requests: int, flagged_at: list[datetime]) -> None:
    """A job submitted at `submitted` whose first len(flagged_at) requests were flagged at those times."""
    job_id = str(uuid.uuid4())
    requests = [RerankRequest(query=f"q{i}", documents=["a", "b"]) for i in range(n_requests)]
    with session_scope(url) as session:
        job, _plans = create_job(session, job_id=job_id, requests=requests, model="m", queue="q", chunk_pairs=100)
        job.status, job.created_at = status, submitted
        job.finished_at = submitted + timedelta(minutes=2) if status == "succeeded" else None
        session.add_all(LowConfidenceCase(job_id=job_id, request_idx=i, reasons=["low_top_score"],
                                          reason="low_top_score", query=f"q{i}", documents=["a", "b"],
                                          scores=[0.1, 0.2], top_score=0.2, model="m", model_revision="r",
                                          score_type="p", created_at=at) for i, at in enumerate(flagged_at))


def test_rate_counts_flags_by_their_jobs_submit_time(database_url):
    ten, eleven = NOW.replace(hour=10, minute=59), NOW.replace(hour=11, minute=0, second=5)
    add_job(database_url, ten, "succeeded", 2, [eleven, eleven])  # submitted at 10:59, flagged at 11:00
    add_job(database_url, NOW.replace(minute=10), "succeeded", 2, [])
    add_job(database_url, NOW.replace(minute=20), "running", 3, [NOW.replace(minute=21)])  # not yet scored
    with session_scope(database_url) as session:
        stats = overview(session, "24h", now=NOW)
    assert [b.hour for b in stats.buckets[-2:]] == [10, 11]
    assert stats.requests[-2:] == [2, 2] and stats.flagged[-2:] == [2, 0]
    assert stats.rate[-2:] == [1.0, 0.0] and all(r is None for r in stats.rate[:-2])
    assert stats.cases[-2:] == [0, 3], "the backlog still counts every case when it was flagged"
    assert sum(stats.jobs) == 3


def test_rate_never_exceeds_one_when_flags_land_after_their_bucket(database_url):
    for minute in range(50, 60):  # each submitted late in an hour, flagged in the next
        at = NOW.replace(hour=9, minute=minute)
        add_job(database_url, at, "succeeded", 1, [at + timedelta(minutes=15)])
    with session_scope(database_url) as session:
        stats = overview(session, "24h", now=NOW)
    assert max(r for r in stats.rate if r is not None) == 1.0
    assert sum(stats.flagged) == sum(stats.requests) == 10
