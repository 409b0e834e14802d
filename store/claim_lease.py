"""Who is working on a chunk: a claim with an expiry, so duplicate deliveries are not attempts.

A chunk's message can arrive several times while its first delivery is still scoring it (sweepers
re-publishing, a broker redelivering). Counting each copy as an attempt failed jobs that were being
scored successfully. A delivery now counts an attempt only when it takes the claim: the chunk is
pending and nobody's claim is live. A copy that finds a live claim is not an attempt; it comes back
when the claim would have expired (the chunk is then done, or its worker died and the copy takes over).

The claim is taken with the attempt, in the set-based claim's one conditional UPDATE
(store/chunk_batch.py: `claimed_until` empty or past), so two copies arriving together, in one group
or in two workers, cannot both take it. It is released when an attempt fails (so its retry starts
at once); a finished chunk is not pending.
"""

from __future__ import annotations

from typing import Optional, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from store.tables import JobChunk

W = TypeVar("W")


class ChunkBusy(Exception):
    """Another delivery holds a live claim on the chunk; try again in `retry_in_s`."""

    def __init__(self, job_id: str, chunk_idx: int, retry_in_s: float) -> None:
        super().__init__(f"chunk {job_id}:{chunk_idx} is being worked on; a copy of its message waits "
                         f"{retry_in_s:.0f}s")
        self.retry_in_s = retry_in_s


def raise_if_busy(claim: "Optional[W] | ChunkBusy") -> Optional[W]:
    """A claim's work (or None): a ChunkBusy that a set-based claim returned for one chunk is raised."""
    if isinstance(claim, ChunkBusy):
        raise claim
    return claim


def release_claim(session: Session, job_id: str, chunk_idx: int) -> None:
    """The attempt ended without scores (its error is recorded): the next delivery may claim at once."""
    session.execute(update(JobChunk).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == chunk_idx)
                    .values(claimed_until=None))


def claim_lease_s(chunk_deadline_s: float) -> float:
    """How long a claim lasts: a live delivery ends its scoring within the chunk deadline and saves
    soon after; well below the visibility timeout (>= 3 x deadline), so a message redelivered
    because its worker died always finds the claim expired and counts as an attempt."""
    return 2 * chunk_deadline_s
