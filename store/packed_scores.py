"""Scores stored packed per chunk, and read back per document.

A chunk's scores are one little-endian float32 array (4 bytes a document) keyed by the chunk;
what produced them (model, revision, score definition, instruction, degraded) is one
`score_metas` row shared by every chunk scored the same way. Readers get one `StoredScore` per
document with the same fields the old per-document rows had, so rankings, metas and the
degraded flag read exactly as before. The models score in float32, so packing loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.tables import ChunkScores, JobChunk, ScoreMetaRow


@dataclass(frozen=True)
class ScoreMeta:
    model: str
    model_revision: str
    score_type: str
    instruction: Optional[str]
    degraded: bool = False

    @property
    def digest(self) -> str:
        fields = [self.model, self.model_revision, self.score_type, self.instruction, bool(self.degraded)]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class StoredScore:
    """One document's score with what produced it (the fields of the former per-document row)."""

    request_idx: int
    doc_index: int
    score: float
    meta: ScoreMeta

    @property
    def model(self) -> str:
        return self.meta.model

    @property
    def model_revision(self) -> str:
        return self.meta.model_revision

    @property
    def score_type(self) -> str:
        return self.meta.score_type

    @property
    def instruction(self) -> Optional[str]:
        return self.meta.instruction

    @property
    def degraded(self) -> bool:
        return self.meta.degraded


def pack(scores: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(scores)}f", *scores)


def unpack(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 4}f", blob)


def insert_ignoring_duplicates(session: Session, table):
    """`INSERT ... ON CONFLICT DO NOTHING` for the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).on_conflict_do_nothing()


# (database URL, digest) -> score_metas.id. A committed meta row is never deleted, so ids stay valid.
_meta_ids: dict[tuple[str, str], int] = {}
_meta_lock = threading.Lock()


def forget_meta_ids() -> None:
    """Drop the cache (after a failed write: the database may have been replaced)."""
    with _meta_lock:
        _meta_ids.clear()


def meta_ids(session: Session, metas: Iterable[ScoreMeta]) -> dict[ScoreMeta, int]:
    """The score_metas id of each meta, creating rows for new ones in the session's transaction.
    New ids are remembered once that transaction commits, so a rolled-back id is never reused."""
    url = str(session.get_bind().engine.url)  # the bind is an Engine or a Connection; both have .engine
    found: dict[ScoreMeta, int] = {}
    missing: dict[str, ScoreMeta] = {}
    for meta in set(metas):
        known = _meta_ids.get((url, meta.digest))
        if known is None:
            missing[meta.digest] = meta
        else:
            found[meta] = known
    if missing:
        session.execute(insert_ignoring_duplicates(session, ScoreMetaRow.__table__), [
            dict(digest=digest, model=m.model, model_revision=m.model_revision, score_type=m.score_type,
                 instruction=m.instruction, degraded=bool(m.degraded)) for digest, m in missing.items()])
        rows = session.execute(select(ScoreMetaRow.digest, ScoreMetaRow.id)
                               .where(ScoreMetaRow.digest.in_(list(missing))))
        new = {(url, digest): meta_id for digest, meta_id in rows}
        for (_url, digest), meta_id in new.items():
            found[missing[digest]] = meta_id

        def remember(_session) -> None:
            with _meta_lock:
                _meta_ids.update(new)

        event.listen(session, "after_commit", remember, once=True)
    return found


def _meta(row) -> ScoreMeta:
    return ScoreMeta(model=row.model, model_revision=row.model_revision, score_type=row.score_type,
                     instruction=row.instruction, degraded=bool(row.degraded))


_packed, _chunk, _meta_row = ChunkScores.__table__, JobChunk.__table__, ScoreMetaRow.__table__
STORED_SCORES = (  # built once: the worker reads these for every finished job (flagging)
    select(_chunk.c.request_idx, _chunk.c.doc_start, _packed.c.scores, _meta_row.c.model, _meta_row.c.model_revision,
           _meta_row.c.score_type, _meta_row.c.instruction, _meta_row.c.degraded)
    .join(_packed, _packed.c.chunk_id == _chunk.c.id)
    .join(_meta_row, _meta_row.c.id == _packed.c.score_meta_id)
    .where(_chunk.c.job_id == bindparam("job_id"))
    .order_by(_chunk.c.request_idx, _chunk.c.doc_start)
)
# A page of requests [start, end): only their chunks are read and unpacked (index job_id, request_idx).
STORED_SCORES_OF_REQUESTS = STORED_SCORES.where(_chunk.c.request_idx >= bindparam("start"),
                                                _chunk.c.request_idx < bindparam("end"))


def stored_scores(session: Session, job_id: str, start: Optional[int] = None,
                  end: Optional[int] = None) -> list[StoredScore]:
    """The stored scores of a job, in (request, document) order: every one, or with `start`/`end` only
    those of requests start..end-1."""
    metas: dict[tuple, ScoreMeta] = {}
    found: list[StoredScore] = []
    if start is None and end is None:
        rows = session.connection().execute(STORED_SCORES, dict(job_id=job_id))
    else:
        rows = session.connection().execute(STORED_SCORES_OF_REQUESTS, dict(
            job_id=job_id, start=start or 0, end=end if end is not None else 2**31 - 1))
    for row in rows:
        key = (row.model, row.model_revision, row.score_type, row.instruction, bool(row.degraded))
        meta = metas.get(key) or metas.setdefault(key, _meta(row))
        found.extend(StoredScore(row.request_idx, row.doc_start + i, value, meta)
                     for i, value in enumerate(unpack(row.scores)))
    return found


def scores_by_request(session: Session, job_id: str, start: Optional[int] = None,
                      end: Optional[int] = None) -> dict[int, list[StoredScore]]:
    """A job's stored scores grouped by request, each in document order (requests start..end-1 only
    when given)."""
    grouped: dict[int, list[StoredScore]] = {}
    for score in stored_scores(session, job_id, start, end):
        grouped.setdefault(score.request_idx, []).append(score)
    return grouped


def scored_pairs(session: Session, job_id: str) -> int:
    """How many of a job's pairs have a stored score."""
    return session.scalar(
        select(func.coalesce(func.sum(JobChunk.doc_end - JobChunk.doc_start), 0))
        .join(ChunkScores, ChunkScores.chunk_id == JobChunk.id).where(JobChunk.job_id == job_id)
    ) or 0


def recent_score_values(session: Session, limit: int, owned=lambda statement, column: statement) -> list[float]:
    """Up to `limit` scores of the most recent chunks (newest first); `owned` may restrict the jobs."""
    statement = owned(select(ChunkScores.scores).join(JobChunk, JobChunk.id == ChunkScores.chunk_id),
                      JobChunk.job_id).order_by(ChunkScores.chunk_id.desc()).limit(limit)
    values: list[float] = []
    for blob in session.scalars(statement):
        values.extend(reversed(unpack(blob)))
        if len(values) >= limit:
            break
    return values[:limit]
