"""One sweeper publishes a never-published job: it marks the job published first, conditionally.

Several workers sweep at once, and each used to read the same unpublished jobs and publish them all;
now only the sweeper whose UPDATE finds `published_at` still empty publishes (and clears the mark
again if publishing fails, so a later sweep retries).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.orm import Session

from store.tables import Job, utcnow


def claim_publication(session: Session, job_id: str) -> bool:
    """True for exactly one caller per unpublished job."""
    # An UPDATE returns a CursorResult (which has rowcount); Session.execute is typed as the base Result.
    marked = cast(CursorResult[Any], session.execute(update(Job).where(Job.id == job_id, Job.published_at.is_(None))
                                                     .values(published_at=utcnow())))
    return marked.rowcount == 1


def undo_publication(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(published_at=None))
