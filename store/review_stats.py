"""Figures for the dashboard's overview: scores, low-confidence rate, review backlog, jobs and latency.

Every query is bounded by a time window and a row limit, so the page stays fast on a big store;
bucketing happens here in Python to stay portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.review_schemas import CaseStatus
from core.stats import percentile
from rerankq.schemas import JobStatus
from store.packed_scores import recent_score_values
from store.tables import Job, LowConfidenceCase, Review

WINDOWS = {"24h": (timedelta(hours=24), timedelta(hours=1)), "7d": (timedelta(days=7), timedelta(hours=6)),
           "30d": (timedelta(days=30), timedelta(days=1))}
ROW_LIMIT = 50_000
SCORE_SAMPLE = 20_000


@dataclass
class Overview:
    buckets: list[datetime]
    requests: list[int]  # requests of jobs that succeeded, by the job's submit time
    flagged: list[int]  # of those requests, how many became cases (same jobs, same time base)
    cases: list[int]  # cases created in each bucket, whatever their job's state (for the backlog)
    jobs: list[int]
    latency_p50: list[Optional[float]]
    latency_p95: list[Optional[float]]
    backlog: list[int]  # open cases at the end of each bucket
    closed: list[int]  # cases first reviewed or dismissed in each bucket
    open_by_reason: list[tuple[str, int]]
    status_counts: dict[str, int] = field(default_factory=dict)
    p50: Optional[float] = None  # over the whole window
    p95: Optional[float] = None

    @property
    def rate(self) -> list[Optional[float]]:
        """Share of scored requests that were flagged, per bucket: at most 1, since both counts come from
        the same succeeded jobs and a request has at most one case."""
        return [f / r if r else None for f, r in zip(self.flagged, self.requests)]


def window_buckets(window: str, now: Optional[datetime] = None) -> tuple[datetime, timedelta, list[datetime]]:
    span, step = WINDOWS[window]
    now = now or datetime.now(timezone.utc)
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    end = epoch + ((now - epoch) // step + 1) * step
    start = end - span
    return start, step, [start + step * i for i in range(int(span / step))]


def _owned(statement, owner: Optional[str], job_id_column):
    return statement if owner is None else statement.join(Job, Job.id == job_id_column).where(Job.owner == owner)


def _jobs_since(session: Session, start: datetime, owner: Optional[str]):
    """(submitted at, finished at, status, requests, cases) of each job submitted since `start`, in one
    pass: the low-confidence rate takes its numerator and denominator from the same rows, so flags and
    requests share one time base."""
    statement = (select(Job.created_at, Job.finished_at, Job.status, Job.n_requests, func.count(LowConfidenceCase.id))
                 .outerjoin(LowConfidenceCase, LowConfidenceCase.job_id == Job.id)
                 .where(Job.created_at >= start)
                 .group_by(Job.id, Job.created_at, Job.finished_at, Job.status, Job.n_requests))
    if owner is not None:
        statement = statement.where(Job.owner == owner)
    return session.execute(statement.limit(ROW_LIMIT))


def overview(session: Session, window: str = "24h", owner: Optional[str] = None,
             now: Optional[datetime] = None) -> Overview:
    start, step, buckets = window_buckets(window, now)
    n = len(buckets)

    def slot(moment: datetime) -> Optional[int]:
        index = int((moment - start) // step)
        return index if 0 <= index < n else None

    requests, flagged, cases, jobs, closed = [0] * n, [0] * n, [0] * n, [0] * n, [0] * n
    latencies: list[list[float]] = [[] for _ in range(n)]
    for created, finished, status, n_requests, n_cases in _jobs_since(session, start, owner):
        i = slot(created)
        if i is None:
            continue
        jobs[i] += 1
        if finished is not None:
            latencies[i].append((finished - created).total_seconds())
        if status == JobStatus.succeeded.value:
            requests[i] += n_requests
            flagged[i] += n_cases
    for (created,) in session.execute(_owned(select(LowConfidenceCase.created_at), owner, LowConfidenceCase.job_id)
                                      .where(LowConfidenceCase.created_at >= start).limit(ROW_LIMIT)):
        i = slot(created)
        if i is not None:
            cases[i] += 1
    first_review = _owned(select(func.min(Review.created_at).label("at")).join(
        LowConfidenceCase, LowConfidenceCase.id == Review.case_id), owner, LowConfidenceCase.job_id
    ).group_by(Review.case_id).subquery()
    for (at,) in session.execute(select(first_review.c.at).where(first_review.c.at >= start).limit(ROW_LIMIT)):
        i = slot(at.replace(tzinfo=at.tzinfo or timezone.utc))
        if i is not None:
            closed[i] += 1
    opened_before = session.scalar(_owned(select(func.count()).select_from(LowConfidenceCase), owner,
                                          LowConfidenceCase.job_id).where(LowConfidenceCase.created_at < start)) or 0
    closed_before = session.scalar(select(func.count()).select_from(first_review).where(first_review.c.at < start)) or 0
    backlog, level = [], opened_before - closed_before
    for i in range(n):
        level += cases[i] - closed[i]
        backlog.append(max(level, 0))
    by_reason = session.execute(_owned(select(LowConfidenceCase.reason, func.count()), owner, LowConfidenceCase.job_id)
                                .where(LowConfidenceCase.status == CaseStatus.open.value)
                                .group_by(LowConfidenceCase.reason))
    by_status = session.execute(_owned(select(LowConfidenceCase.status, func.count()), owner, LowConfidenceCase.job_id)
                                .group_by(LowConfidenceCase.status))
    return Overview(
        buckets=buckets, requests=requests, flagged=flagged, cases=cases, jobs=jobs,
        latency_p50=[percentile(v, 50) for v in latencies], latency_p95=[percentile(v, 95) for v in latencies],
        backlog=backlog, closed=closed, open_by_reason=[(r, c) for r, c in by_reason],
        status_counts={s: c for s, c in by_status},
        p50=percentile([v for bucket in latencies for v in bucket], 50),
        p95=percentile([v for bucket in latencies for v in bucket], 95),
    )


def score_histogram(session: Session, owner: Optional[str] = None,
                    bins: int = 20) -> tuple[list[tuple[float, float, int]], int]:
    """Counts of the most recent scores over [0, 1] (or their own range when outside it), and how many."""
    values = recent_score_values(session, SCORE_SAMPLE, lambda statement, column: _owned(statement, owner, column))
    if not values:
        return [], 0
    lo, hi = min(0.0, min(values)), max(1.0, max(values))
    width = (hi - lo) / bins
    counts = [0] * bins
    for value in values:
        counts[min(int((value - lo) / width), bins - 1)] += 1
    return [(lo + width * i, lo + width * (i + 1), counts[i]) for i in range(bins)], len(values)
