"""Which stored cases `rerankq rescore` sends to a model again, and the jobs that carry them.

A candidate model (or a new revision) can then be judged on every case reviewers have already
labelled. Cases the model already has a rescore of are left out, so running it twice costs nothing.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Optional

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from store.shadow_jobs import RESCORE, create_copy_job
from store.tables import Job, LowConfidenceCase, ShadowLink

CASE_SETS = ("reviewed", "open", "all")


def cases_to_rescore(session: Session, model: str, cases: str = "reviewed",
                     since: Optional[date] = None) -> list[tuple[str, int]]:
    """(job id, request index) of the chosen cases that `model` has no live or finished rescore of."""
    if cases not in CASE_SETS:
        raise ValueError(f"cases must be one of {CASE_SETS}")
    statement = select(LowConfidenceCase.job_id, LowConfidenceCase.request_idx).order_by(LowConfidenceCase.id)
    if cases != "all":
        statement = statement.where(LowConfidenceCase.status == cases)
    if since is not None:
        statement = statement.where(LowConfidenceCase.created_at >= datetime.combine(since, time(), timezone.utc))
    done = set(session.execute(
        select(ShadowLink.source_job_id, ShadowLink.source_request_idx).join(Job, Job.id == ShadowLink.job_id)
        .where(and_(Job.model == model, ShadowLink.purpose == RESCORE, Job.status != "failed",
                    Job.status != "cancelled"))).all())
    return [(job_id, idx) for job_id, idx in session.execute(statement) if (job_id, idx) not in done]


def create_rescore_jobs(session: Session, sources: list[tuple[str, int]], *, model: str, queue: str,
                        chunk_pairs: int, requests_per_job: int) -> list[tuple[str, list[int]]]:
    """Jobs of at most `requests_per_job` requests each -> [(job id, chunk indices)]."""
    jobs = []
    for start in range(0, len(sources), requests_per_job):
        job_id, chunks = create_copy_job(session, sources[start:start + requests_per_job], model=model, queue=queue,
                                         purpose=RESCORE, chunk_pairs=chunk_pairs)
        if job_id:
            jobs.append((job_id, chunks))
    return jobs
