"""Figures for the dashboard's overview: scores, low-confidence rate, review backlog, jobs and latency.

Every query is bounded by a time window (an index range) and grouped by time bucket in SQL
(store/time_buckets.py, for SQLite and PostgreSQL), so the page stays fast on a big store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session, aliased

from core.review_schemas import CaseStatus
from core.stats import percentile
from rerankq.schemas import JobStatus
from store.packed_scores import recent_score_values
from store.shadow_jobs import COPY_KINDS
from store.tables import Job, LowConfidenceCase, Review
from store.time_buckets import bucket_index, seconds_between

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


def _client_jobs(statement, owner: Optional[str], job_id_column):
    """Only rows of client jobs (not shadow or rescore copies), of `owner`'s when given."""
    statement = statement.join(Job, Job.id == job_id_column).where(Job.kind.not_in(COPY_KINDS))
    return statement if owner is None else statement.where(Job.owner == owner)


def _first_reviews(owner: Optional[str], since: datetime, before: Optional[datetime] = None):
    """(case_id, at) of cases first reviewed (or dismissed) in [since, before): found from the reviews in that
    range (an index range), not by grouping every review the store holds."""
    review, earlier = Review, aliased(Review)
    statement = select(review.case_id, func.min(review.created_at).label("at")).where(
        review.created_at >= since, ~exists().where(earlier.case_id == review.case_id, earlier.created_at < since))
    if before is not None:
        statement = statement.where(review.created_at < before)
    if owner is not None:
        statement = (statement.join(LowConfidenceCase, LowConfidenceCase.id == review.case_id)
                     .join(Job, Job.id == LowConfidenceCase.job_id).where(Job.owner == owner))
    return statement.group_by(review.case_id).subquery()


def overview(session: Session, window: str = "24h", owner: Optional[str] = None,
             now: Optional[datetime] = None) -> Overview:
    """Every series is grouped by bucket in SQL over its window's index range: the page reads a few dozen
    numbers (and one latency per job) whatever the size of the store."""
    start, step, buckets = window_buckets(window, now)
    n = len(buckets)
    end = start + step * n
    dialect = session.get_bind().dialect.name

    def per_bucket(statement, columns: int = 1) -> list[list[float]]:
        series: list[list[float]] = [[0.0] * n for _ in range(columns)]
        for index, *values in session.execute(statement):
            if index is not None and 0 <= index < n:
                for column, value in enumerate(values):
                    series[column][index] += value or 0
        return series

    job_bucket = bucket_index(Job.created_at, start, step, dialect).label("bucket")
    jobs_in_window = [Job.created_at >= start, Job.created_at < end,
                      Job.kind.not_in(COPY_KINDS)] + ([Job.owner == owner] if owner else [])  # client traffic only
    succeeded = Job.status == JobStatus.succeeded.value
    jobs, requests = per_bucket(select(job_bucket, func.count(), func.sum(case((succeeded, Job.n_requests), else_=0)))
                                .where(*jobs_in_window).group_by(job_bucket), columns=2)
    # The low-confidence rate takes its numerator and denominator from the same succeeded jobs, so flags and
    # requests share one time base (the job's submit time).
    (flagged,) = per_bucket(select(job_bucket, func.count(LowConfidenceCase.id))
                            .join(LowConfidenceCase, LowConfidenceCase.job_id == Job.id)
                            .where(*jobs_in_window, succeeded).group_by(job_bucket))
    latencies: list[list[float]] = [[] for _ in range(n)]
    for index, seconds in session.execute(
            select(job_bucket, seconds_between(Job.finished_at, Job.created_at, dialect))
            .where(*jobs_in_window, Job.finished_at.is_not(None)).limit(ROW_LIMIT)):
        if index is not None and 0 <= index < n:
            latencies[index].append(max(float(seconds), 0.0))

    case_bucket = bucket_index(LowConfidenceCase.created_at, start, step, dialect).label("bucket")
    (cases,) = per_bucket(_owned(select(case_bucket, func.count()), owner, LowConfidenceCase.job_id)
                          .where(LowConfidenceCase.created_at >= start, LowConfidenceCase.created_at < end)
                          .group_by(case_bucket))
    first = _first_reviews(owner, start, end)
    closed_bucket = bucket_index(first.c.at, start, step, dialect).label("bucket")
    (closed,) = per_bucket(select(closed_bucket, func.count()).select_from(first).group_by(closed_bucket))

    by_reason = session.execute(_owned(select(LowConfidenceCase.reason, func.count()), owner, LowConfidenceCase.job_id)
                                .where(LowConfidenceCase.status == CaseStatus.open.value)
                                .group_by(LowConfidenceCase.reason))
    status_counts = {s: c for s, c in session.execute(
        _owned(select(LowConfidenceCase.status, func.count()), owner, LowConfidenceCase.job_id)
        .group_by(LowConfidenceCase.status))}
    # The backlog, walked back from the cases open now: at the end of a bucket it is the open cases, less
    # those flagged since, plus those closed since. (Counting forward from the first case would read them all.)
    flagged_after = session.scalar(_owned(select(func.count()).select_from(LowConfidenceCase), owner,
                                          LowConfidenceCase.job_id).where(LowConfidenceCase.created_at >= end,
                                                                         LowConfidenceCase.status == CaseStatus.open.value)) or 0
    later = _first_reviews(owner, end)
    closed_after = session.scalar(select(func.count()).select_from(later).join(
        LowConfidenceCase, LowConfidenceCase.id == later.c.case_id).where(LowConfidenceCase.created_at < end)) or 0
    level = status_counts.get(CaseStatus.open.value, 0) - flagged_after + closed_after
    backlog = [0] * n
    for i in reversed(range(n)):
        backlog[i] = max(level, 0)
        level -= cases[i] - closed[i]
    return Overview(
        buckets=buckets, requests=[int(v) for v in requests], flagged=[int(v) for v in flagged],
        cases=[int(v) for v in cases], jobs=[int(v) for v in jobs],
        latency_p50=[percentile(v, 50) for v in latencies], latency_p95=[percentile(v, 95) for v in latencies],
        backlog=backlog, closed=[int(v) for v in closed], open_by_reason=[(r, c) for r, c in by_reason],
        status_counts=status_counts,
        p50=percentile([v for bucket in latencies for v in bucket], 50),
        p95=percentile([v for bucket in latencies for v in bucket], 95),
    )


def score_histogram(session: Session, owner: Optional[str] = None,
                    bins: int = 20) -> tuple[list[tuple[float, float, int]], int]:
    """Counts of the most recent scores of client jobs over [0, 1] (or their own range when outside it), and how
    many. Shadow and rescore copies are left out: they are other models' scores no client was given."""
    values = recent_score_values(session, SCORE_SAMPLE, lambda statement, column: _client_jobs(statement, owner, column))
    if not values:
        return [], 0
    lo, hi = min(0.0, min(values)), max(1.0, max(values))
    width = (hi - lo) / bins
    counts = [0] * bins
    for value in values:
        counts[min(int((value - lo) / width), bins - 1)] += 1
    return [(lo + width * i, lo + width * (i + 1), counts[i]) for i in range(bins)], len(values)
