"""The task threads' side of group commit: claim or save one chunk through the process's
committer (workers/group_commit.py), which runs it in one transaction with its neighbours."""

from __future__ import annotations

import threading
from typing import Optional, Sequence

from sqlalchemy.orm import Session

from store.chunk_batch import ChunkSave, ChunkWork, ConfidenceRule, claim_chunks, save_chunks
from store.packed_scores import ScoreMeta
from workers.group_commit import GroupCommitter

_committers: dict[str, GroupCommitter] = {}
_lock = threading.Lock()


def committer(url: str) -> GroupCommitter:
    """The one committer of this process for a database."""
    with _lock:
        found = _committers.get(url)
        if found is None:
            found = _committers[url] = GroupCommitter(url)
        return found


def _claim_group(session: Session, items: Sequence[tuple[str, int, int]]) -> list[Optional[ChunkWork]]:
    # One max_attempts per process; the group takes the first item's.
    return claim_chunks(session, [(job_id, chunk_idx) for job_id, chunk_idx, _ in items], items[0][2])


def _save_group(session: Session, saves: Sequence[ChunkSave]) -> list[bool]:
    return save_chunks(session, saves)


def claim_grouped(url: str, job_id: str, chunk_idx: int, max_attempts: int) -> Optional[ChunkWork]:
    return committer(url).run(_claim_group, (job_id, chunk_idx, max_attempts))


def save_grouped(url: str, work: ChunkWork, scores: Sequence[float], meta: ScoreMeta, rule: ConfidenceRule) -> bool:
    """True when this save finished the job."""
    return committer(url).run(_save_group, ChunkSave(work, scores, meta, rule))
