"""Retention: delete finished jobs' data, old cases and their reviews, and old expiry markers.

Everything is deleted by id, in small batches (one short transaction each), so a sweep never
holds the writers of the hot path for long. A job's data lives in the tables of JOB_OWNED_TABLES;
a table that stores per-job rows is added there and nowhere else (a table keyed by a job's chunk,
as chunk_scores is, is found through its foreign key). The job row itself stays, with
`expired_at` set, as a marker that answers 404 job_expired; markers go after
RERANKQ_EXPIRED_MARKER_DAYS once no case, case repeat or shadow link refers to them.

Model-level rows belong to no job and are never deleted here: drift_references, api_keys, and
score_metas. A score_metas row is shared by every chunk scored the same way, and each worker process
caches its id (store/packed_scores.py relies on a committed meta row never being deleted), so even an
unreferenced one stays: a worker's next save would otherwise point at a missing row. There is one per
way of scoring (model, revision, score type, instruction, degraded), not per job. The jobs a drift
reference window samples (store.drift.reference_job_ids) are kept past retention, unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Collection, Optional, Sequence, cast

from sqlalchemy import CursorResult, Delete, Table, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from core.review_schemas import CaseStatus
from store.tables import CaseRepeat, ChunkScores, Job, JobChunk, JobRequest, LowConfidenceCase, Review, ShadowLink

# Every table holding rows that belong to one job, in deletion order (children first): by a `job_id`
# column, or by a foreign key to a table listed after it (chunk_scores.chunk_id -> job_chunks.id).
# Cases are not here: they have their own retention (reviewers and label exports need them after the
# job is gone).
# shadow_links go with the shadow or rescore copy they describe (its job_id), not with the request copied.
JOB_OWNED_TABLES: tuple[Any, ...] = (  # Table objects of the ORM classes
   ChunkScores.__table__, JobChunk.__table__, JobRequest.__table__,
                                       ShadowLink.__table__)
# Every other table, and why retention leaves its rows alone (tests/store/test_retention.py checks that
# each table of the schema is in one of the two).
NOT_JOB_OWNED: dict[str, str] = {
    "jobs": "the job row stays as an expiry marker (its own age: RERANKQ_EXPIRED_MARKER_DAYS)",
    "low_confidence_cases": "case retention (RERANKQ_CASE_RETENTION_DAYS), kept until exported",
    "reviews": "deleted with their case",
    "case_repeats": "a case's later identical requests (its repeat count): deleted with their case",
    "score_metas": "shared by every chunk scored the same way; ids cached by the workers",
    "drift_references": "one per model: its reference window",
    "api_keys": "belong to tenants",
    "tenant_webhook_secrets": "one per tenant",
    "revoked_sessions": "one per logout, pruned by the next logout once expired (store/dashboard_sessions.py)",
}


def rows_of_jobs(table: Table, job_ids) -> ColumnElement[bool]:
    """The rows of a job-owned table that belong to `job_ids` (a list of ids, or a subquery of them)."""
    if "job_id" in table.c:
        return table.c.job_id.in_(job_ids)
    for key in table.foreign_keys:
        parent = key.column.table
        if parent is not table and parent in JOB_OWNED_TABLES:
            return key.parent.in_(select(key.column).where(rows_of_jobs(parent, job_ids)))
    raise ValueError(f"{table.name}: no job_id column, nor a foreign key to a job-owned table")


@dataclass
class RetentionReport:
    """What a pass removed (or, in a dry run, would remove)."""

    jobs: int = 0
    rows: dict[str, int] = field(default_factory=dict)  # table name -> rows
    cases: int = 0
    reviews: int = 0
    repeats: int = 0  # case_repeats rows of the deleted cases
    unexported_kept: int = 0  # reviewed cases past retention kept because no export has included them
    drift_kept: int = 0  # jobs past retention kept because a drift reference window samples them
    markers: int = 0

    def add_rows(self, table: str, count: int) -> None:
        if count:
            self.rows[table] = self.rows.get(table, 0) + count

    def lines(self) -> list[str]:
        rows = ", ".join(f"{name} {count}" for name, count in sorted(self.rows.items()))
        lines = [f"jobs: {self.jobs}" + (f" ({rows})" if rows else ""),
                 f"cases: {self.cases} (reviews {self.reviews}, repeats {self.repeats})"]
        if self.unexported_kept:
            lines.append(f"kept: {self.unexported_kept} reviewed cases past retention that no label export has "
                         "included yet (export them, or purge with --force)")
        if self.drift_kept:
            lines.append(f"kept: {self.drift_kept} jobs past retention that a model's drift reference window "
                         "samples (`rerankq drift pin` moves the window; purge with --force deletes them)")
        lines.append(f"expired-job markers: {self.markers}")
        return lines


# --- jobs ---------------------------------------------------------------------------------

def _expirable(finished_before: datetime, keep: Collection[str] = ()):
    conditions = [Job.expired_at.is_(None), Job.finished_at.is_not(None), Job.finished_at < finished_before]
    if keep:
        conditions.append(Job.id.not_in(list(keep)))
    return tuple(conditions)


def expirable_job_ids(session: Session, finished_before: datetime, limit: int, keep: Collection[str] = ()) -> list[str]:
    """Finished jobs not yet expired (but those in `keep`), oldest first. On PostgreSQL their rows are
    locked, skipping any a worker holds (a late duplicate delivery finishing), so the sweep waits on nobody."""
    statement = (select(Job.id).where(*_expirable(finished_before, keep)).order_by(Job.finished_at, Job.id)
                 .limit(limit).with_for_update(skip_locked=True))
    return list(session.scalars(statement))


def count_kept_jobs(session: Session, finished_before: datetime, keep: Collection[str]) -> int:
    """Jobs of `keep` that are past retention (kept, not expired)."""
    if not keep:
        return 0
    return session.scalar(select(func.count()).select_from(Job).where(*_expirable(finished_before),
                                                                      Job.id.in_(list(keep)))) or 0


def expire_jobs(session: Session, job_ids: Sequence[str], now: datetime, report: RetentionReport) -> None:
    """Delete the jobs' rows from every job-owned table and mark the jobs expired."""
    if not job_ids:
        return
    ids = list(job_ids)
    for table in JOB_OWNED_TABLES:
        report.add_rows(table.name, _deleted(session, delete(table).where(rows_of_jobs(table, ids))))
    session.execute(update(Job).where(Job.id.in_(ids), Job.expired_at.is_(None)).values(expired_at=now))
    report.jobs += len(ids)


def count_expirable_jobs(session: Session, finished_before: datetime, report: RetentionReport,
                         keep: Collection[str] = ()) -> None:
    """Dry run: what expire_jobs would delete."""
    conditions = _expirable(finished_before, keep)
    ids = select(Job.id).where(*conditions).scalar_subquery()
    report.jobs += session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    for table in JOB_OWNED_TABLES:
        report.add_rows(table.name, session.scalar(
            select(func.count()).select_from(table).where(rows_of_jobs(table, ids))) or 0)


# --- cases and reviews ----------------------------------------------------------------------

def _case_conditions(created_before: datetime, force: bool):
    conditions = [LowConfidenceCase.created_at < created_before]
    if not force:  # a reviewed case is a label: only once an export has it
        conditions.append(or_(LowConfidenceCase.status != CaseStatus.reviewed.value,
                              LowConfidenceCase.exported_at.is_not(None)))
    return conditions


def expirable_case_ids(session: Session, created_before: datetime, force: bool, limit: int) -> list[int]:
    return list(session.scalars(select(LowConfidenceCase.id).where(*_case_conditions(created_before, force))
                                .order_by(LowConfidenceCase.created_at, LowConfidenceCase.id).limit(limit)))


def delete_cases(session: Session, case_ids: Sequence[int], report: RetentionReport) -> None:
    if not case_ids:
        return
    ids = list(case_ids)
    report.reviews += _deleted(session, delete(Review).where(Review.case_id.in_(ids)))
    report.repeats += _deleted(session, delete(CaseRepeat).where(CaseRepeat.case_id.in_(ids)))
    report.cases += _deleted(session, delete(LowConfidenceCase).where(LowConfidenceCase.id.in_(ids)))


def count_expirable_cases(session: Session, created_before: datetime, force: bool, report: RetentionReport) -> None:
    conditions = _case_conditions(created_before, force)
    report.cases += session.scalar(select(func.count()).select_from(LowConfidenceCase).where(*conditions)) or 0
    ids = select(LowConfidenceCase.id).where(*conditions).scalar_subquery()
    report.reviews += session.scalar(select(func.count()).select_from(Review).where(Review.case_id.in_(ids))) or 0
    report.repeats += session.scalar(select(func.count()).select_from(CaseRepeat)
                                     .where(CaseRepeat.case_id.in_(ids))) or 0


def count_unexported_kept(session: Session, created_before: datetime) -> int:
    return session.scalar(select(func.count()).select_from(LowConfidenceCase).where(
        LowConfidenceCase.created_at < created_before, LowConfidenceCase.status == CaseStatus.reviewed.value,
        LowConfidenceCase.exported_at.is_(None))) or 0


# --- expiry markers ---------------------------------------------------------------------------

def _referenced():
    """A job row something still points at: a case (its own or a repeat), or a live copy's shadow link. The
    row must stay (deleting it would also cascade to those rows)."""
    return or_(exists().where(LowConfidenceCase.job_id == Job.id), exists().where(CaseRepeat.job_id == Job.id),
               exists().where(ShadowLink.source_job_id == Job.id))


def _prunable_markers(expired_before: datetime):
    return (Job.expired_at.is_not(None), Job.expired_at < expired_before, ~_referenced())


def prunable_marker_ids(session: Session, expired_before: datetime, limit: int) -> list[str]:
    return list(session.scalars(select(Job.id).where(*_prunable_markers(expired_before))
                                .order_by(Job.expired_at, Job.id).limit(limit)))


def delete_markers(session: Session, job_ids: Sequence[str], report: RetentionReport) -> None:
    if not job_ids:
        return
    # Only rows that are still unreferenced markers: a case flagged (or repeated) meanwhile keeps its job.
    report.markers += _deleted(session, delete(Job).where(Job.id.in_(list(job_ids)), Job.expired_at.is_not(None),
                                                          ~_referenced()))


def count_prunable_markers(session: Session, expired_before: datetime, report: RetentionReport) -> None:
    report.markers += session.scalar(select(func.count()).select_from(Job)
                                     .where(*_prunable_markers(expired_before))) or 0


def expired_message(job: Job, retention_days: Optional[float]) -> str:
    """What GET /v1/jobs/{id} says about a deleted job."""
    when = job.expired_at.strftime("%Y-%m-%d %H:%M UTC") if job.expired_at else "earlier"
    rule = (f"finished jobs and their results are deleted {retention_days:g} days after they finish "
            f"(RERANKQ_RETENTION_DAYS={retention_days:g})" if retention_days
            else "its results were purged (rerankq purge)")
    return f"job_id: job '{job.id}' has expired and its results were deleted on {when}: {rule}"


def _deleted(session: Session, statement: Delete) -> int:
    """Rows a DELETE removed (a DML statement's result is a CursorResult)."""
    return cast(CursorResult, session.execute(statement)).rowcount or 0
