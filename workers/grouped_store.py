"""The task threads' side of group commit: claim or save one chunk through the process's
committer (store/group_commit.py), which runs it in one transaction with its neighbours."""

from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy.orm import Session

from store.chunk_batch import ChunkSave, ChunkWork, Claim, ConfidenceRule, claim_chunks, save_chunks
from store.claim_lease import raise_if_busy
from store.packed_scores import ScoreMeta
from store.group_commit import committer


def _claim_group(session: Session, items: Sequence[tuple[str, int, int, float]]) -> list[Claim]:
    # One max_attempts and claim lease per process; the group takes the first item's.
    return claim_chunks(session, [(job_id, chunk_idx) for job_id, chunk_idx, _, _ in items], items[0][2],
                        items[0][3])


def _save_group(session: Session, saves: Sequence[ChunkSave]) -> list[bool]:
    return save_chunks(session, saves)


def claim_grouped(url: str, job_id: str, chunk_idx: int, max_attempts: int,
                  lease_s: float = 0.0) -> Optional[ChunkWork]:
    """The chunk's work, None when there is nothing (left) to do; raises ChunkBusy for a copy whose
    chunk another delivery has claimed (store/claim_lease.py)."""
    return raise_if_busy(committer(url).run(_claim_group, (job_id, chunk_idx, max_attempts, lease_s)))


def save_grouped(url: str, work: ChunkWork, scores: Sequence[float], meta: ScoreMeta, rule: ConfidenceRule) -> bool:
    """True when this save finished the job."""
    return committer(url).run(_save_group, ChunkSave(work, scores, meta, rule))
