"""Jobs with chosen scores, written through the store's own write path (create_job, claim_chunk,
save_scores) as an API and a worker write them: for tests that need known score distributions or cases."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Callable, Optional, Sequence

from sqlalchemy import update

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.tables import Job
from store.work import ScoreMeta, claim_chunk, save_scores


def store_scored_job(database_url: str, model: str, requests: Sequence[tuple[str, list[str], list[float]]],
                     rule: Callable[[Sequence[float]], list[str]], revision: str = "r1",
                     finished_at: Optional[datetime] = None, instruction: Optional[str] = None) -> str:
    """One job of (query, documents, scores) requests, scored and saved; returns its id."""
    job_id = str(uuid.uuid4())
    bodies = [RerankRequest(query=q, documents=docs, instruction=instruction) for q, docs, _ in requests]
    with session_scope(database_url) as session:
        _, chunks = create_job(session, job_id=job_id, requests=bodies, model=model, queue="q", chunk_pairs=1000)
    for index in range(len(chunks)):
        with session_scope(database_url) as session:
            work = claim_chunk(session, job_id, index, max_attempts=3)
            values = requests[work.request_idx][2][work.doc_start:work.doc_start + len(work.documents)]
            save_scores(session, work, values, ScoreMeta(model, revision, "p-yes", instruction), rule)
    if finished_at is not None:
        with session_scope(database_url) as session:
            session.execute(update(Job).where(Job.id == job_id).values(
                created_at=finished_at - timedelta(seconds=2), started_at=finished_at - timedelta(seconds=1),
                finished_at=finished_at))
    return job_id
