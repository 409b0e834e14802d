"""scores packed per chunk; model, revision, score type and instruction stored once

Revision ID: 0006
Revises: 0010
Create Date: 2026-12-03 09:30:00

One row per scored document (about 580 bytes with its indexes) becomes one float32 array per
chunk, keyed by the chunk, plus one shared `score_metas` row per way of scoring. Existing
per-document scores are CONVERTED: each chunk whose documents all have a score gets its array
and meta, then the old `scores` table is dropped. A chunk with only some of its documents scored
cannot exist (a chunk's scores were written in one transaction), and is left unscored if found.
Downgrade unpacks the arrays back into per-document rows.
"""
from __future__ import annotations

import hashlib
import json
import struct
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0010'
branch_labels = None
depends_on = None

BATCH = 2000  # chunks converted per statement group


def _digest(model, revision_, score_type, instruction, degraded) -> str:
    fields = [model, revision_, score_type, instruction, bool(degraded)]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def _tables():
    """Light table handles (no reflection): the old scores, chunks, metas and packed scores."""
    scores = sa.table('scores', *(sa.column(name) for name in (
        'job_id', 'request_idx', 'doc_index', 'score', 'model', 'model_revision', 'score_type', 'instruction',
        'degraded', 'created_at')))
    chunks = sa.table('job_chunks', *(sa.column(name) for name in (
        'id', 'job_id', 'request_idx', 'doc_start', 'doc_end', 'finished_at')))
    metas = sa.table('score_metas', sa.column('id', sa.Integer), *(sa.column(name) for name in (
        'digest', 'model', 'model_revision', 'score_type', 'instruction', 'degraded')))
    packed = sa.table('chunk_scores', sa.column('chunk_id'), sa.column('score_meta_id'),
                      sa.column('scores', sa.LargeBinary))
    return scores, chunks, metas, packed


def upgrade() -> None:
    op.create_table('score_metas',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('model_revision', sa.String(length=200), nullable=False),
    sa.Column('score_type', sa.String(length=200), nullable=False),
    sa.Column('instruction', sa.Text(), nullable=True),
    sa.Column('degraded', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    op.create_table('chunk_scores',
    sa.Column('chunk_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('score_meta_id', sa.Integer(), nullable=False),
    sa.Column('scores', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['chunk_id'], ['job_chunks.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['score_meta_id'], ['score_metas.id'], ),
    sa.PrimaryKeyConstraint('chunk_id')
    )
    with op.batch_alter_table('job_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_job_chunks_job_request', ['job_id', 'request_idx'], unique=False)
    _convert_scores(op.get_bind())
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index('ix_scores_job_request')
    op.drop_table('scores')


def _convert_scores(bind) -> None:
    scores, chunks, metas, packed = _tables()
    meta_ids: dict[str, int] = {}
    pending: list[dict] = []
    # One job at a time, so memory holds one job's scores however large the store is.
    for job_id in list(bind.scalars(sa.select(scores.c.job_id).distinct())):
        by_request: dict[int, dict[int, sa.Row]] = {}
        for row in bind.execute(sa.select(*scores.c).where(scores.c.job_id == job_id)):
            by_request.setdefault(row.request_idx, {})[row.doc_index] = row
        for chunk in list(bind.execute(sa.select(chunks.c.id, chunks.c.request_idx, chunks.c.doc_start,
                                                 chunks.c.doc_end).where(chunks.c.job_id == job_id))):
            docs = by_request.get(chunk.request_idx, {})
            found = [docs.get(i) for i in range(chunk.doc_start, chunk.doc_end)]
            rows = [r for r in found if r is not None]
            if not rows or len(rows) != len(found):  # a document without a score: not converted
                continue
            first = rows[0]
            digest = _digest(first.model, first.model_revision, first.score_type, first.instruction, first.degraded)
            if digest not in meta_ids:
                meta_ids[digest] = bind.scalar(metas.insert().values(
                    digest=digest, model=first.model, model_revision=first.model_revision,
                    score_type=first.score_type, instruction=first.instruction,
                    degraded=bool(first.degraded)).returning(metas.c.id))
            pending.append(dict(chunk_id=chunk.id, score_meta_id=meta_ids[digest],
                                scores=struct.pack(f"<{len(rows)}f", *(r.score for r in rows))))
        if len(pending) >= BATCH:
            bind.execute(packed.insert(), pending)
            pending.clear()
    if pending:
        bind.execute(packed.insert(), pending)


def downgrade() -> None:
    op.create_table('scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('request_idx', sa.Integer(), nullable=False),
    sa.Column('doc_index', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('model_revision', sa.String(length=200), nullable=False),
    sa.Column('score_type', sa.String(length=200), nullable=False),
    sa.Column('instruction', sa.Text(), nullable=True),
    sa.Column('degraded', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'request_idx', 'doc_index', name='uq_scores_job_request_doc')
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_job_request', ['job_id', 'request_idx'], unique=False)
    bind = op.get_bind()
    scores, chunks, metas, packed = _tables()
    source = list(bind.execute(
        sa.select(chunks.c.job_id, chunks.c.request_idx, chunks.c.doc_start, chunks.c.finished_at, packed.c.scores,
                  metas.c.model, metas.c.model_revision, metas.c.score_type, metas.c.instruction, metas.c.degraded)
        .join(packed, packed.c.chunk_id == chunks.c.id).join(metas, metas.c.id == packed.c.score_meta_id)))
    rows: list[dict] = []
    for chunk in source:
        values = struct.unpack(f"<{len(chunk.scores) // 4}f", chunk.scores)
        created = chunk.finished_at or datetime.now(timezone.utc)
        rows.extend(dict(job_id=chunk.job_id, request_idx=chunk.request_idx, doc_index=chunk.doc_start + i,
                         score=value, model=chunk.model, model_revision=chunk.model_revision,
                         score_type=chunk.score_type, instruction=chunk.instruction, degraded=bool(chunk.degraded),
                         created_at=created) for i, value in enumerate(values))
        if len(rows) >= 10_000:
            bind.execute(scores.insert(), rows)
            rows = []
    if rows:
        bind.execute(scores.insert(), rows)
    op.drop_table('chunk_scores')
    op.drop_table('score_metas')
    with op.batch_alter_table('job_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_job_chunks_job_request')
