"""One retention pass over the store, in small batches: shared by the worker's sweeper and `rerankq purge`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from core.settings import Settings
from store.db import session_scope
from store import retention
from store.drift import reference_job_ids
from store.retention import RetentionReport
from store.tables import utcnow


@dataclass(frozen=True)
class RetentionPolicy:
    """Ages past which things go (None: keep them)."""

    jobs: Optional[timedelta] = None  # finished jobs, by finish time
    cases: Optional[timedelta] = None  # cases and their reviews, by creation time
    markers: Optional[timedelta] = None  # expired jobs' marker rows, by expiry time
    force: bool = False  # also reviewed cases no label export has included
    batch: int = 100
    # Keep the newest this many jobs each drift reference window samples (RERANKQ_DRIFT_MAX_JOBS): the
    # window is the model's baseline for as long as its revision serves. 0: keep none.
    drift_jobs: int = 0
    # Never touch a job that finished more recently than this: a duplicate delivery of one of its chunks
    # may still be running (it gives up at RERANKQ_CHUNK_DEADLINE_S), and must find its rows in place.
    settle: timedelta = timedelta(0)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "RetentionPolicy":
        def days(value: float) -> Optional[timedelta]:
            return timedelta(days=value) if value > 0 else None

        values: dict[str, Any] = dict(jobs=days(settings.retention_days), cases=days(settings.case_retention_days),
                      markers=days(settings.expired_marker_days) if settings.expired_marker_days else timedelta(0),
                      batch=settings.retention_batch, settle=timedelta(seconds=settings.chunk_deadline_s),
                      drift_jobs=settings.drift_max_jobs)
        values.update(overrides)
        return cls(**values)

    def job_cutoff(self, now: datetime) -> Optional[datetime]:
        return None if self.jobs is None else now - max(self.jobs, self.settle)


def run_pass(database_url: str, policy: RetentionPolicy, *, now: Optional[datetime] = None, dry_run: bool = False,
             between_batches: Callable[[], bool] = lambda: True) -> RetentionReport:
    """Delete (or, dry run, count) what the policy says has expired. `between_batches` runs after each
    committed batch (the sweeper pauses there and renews its lock); returning False stops the pass."""
    now = now or utcnow()
    report = RetentionReport()
    job_cutoff = policy.job_cutoff(now)
    case_cutoff = None if policy.cases is None else now - policy.cases
    marker_cutoff = None if policy.markers is None else now - policy.markers
    keep: set[str] = set()
    if job_cutoff is not None and policy.drift_jobs:
        with session_scope(database_url) as session:
            keep = reference_job_ids(session, policy.drift_jobs)
            report.drift_kept = retention.count_kept_jobs(session, job_cutoff, keep)
    if dry_run:
        with session_scope(database_url) as session:
            if job_cutoff is not None:
                retention.count_expirable_jobs(session, job_cutoff, report, keep)
            if case_cutoff is not None:
                retention.count_expirable_cases(session, case_cutoff, policy.force, report)
                if not policy.force:
                    report.unexported_kept = retention.count_unexported_kept(session, case_cutoff)
            if marker_cutoff is not None:
                retention.count_prunable_markers(session, marker_cutoff, report)
        return report

    def batches(step: Callable) -> bool:
        while True:
            with session_scope(database_url) as session:
                done = step(session)
            if not done or not between_batches():
                return bool(done)

    if job_cutoff is not None and batches(lambda s: _expire_batch(s, job_cutoff, now, policy.batch, report, keep)):
        return report
    if case_cutoff is not None:
        if batches(lambda s: _case_batch(s, case_cutoff, policy, report)):
            return report
        if not policy.force:
            with session_scope(database_url) as session:
                report.unexported_kept = retention.count_unexported_kept(session, case_cutoff)
    if marker_cutoff is not None:
        batches(lambda s: _marker_batch(s, marker_cutoff, policy.batch, report))
    return report


def _expire_batch(session, cutoff: datetime, now: datetime, batch: int, report: RetentionReport,
                  keep: set[str]) -> int:
    ids = retention.expirable_job_ids(session, cutoff, batch, keep)
    retention.expire_jobs(session, ids, now, report)
    return len(ids)


def _case_batch(session, cutoff: datetime, policy: RetentionPolicy, report: RetentionReport) -> int:
    ids = retention.expirable_case_ids(session, cutoff, policy.force, policy.batch)
    retention.delete_cases(session, ids, report)
    return len(ids)


def _marker_batch(session, cutoff: datetime, batch: int, report: RetentionReport) -> int:
    ids = retention.prunable_marker_ids(session, cutoff, batch)
    before = report.markers
    retention.delete_markers(session, ids, report)
    # A batch whose markers all gained cases meanwhile deletes nothing: stop rather than spin on it.
    return report.markers - before
