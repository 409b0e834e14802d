"""retention: expired jobs, hashed texts, exported cases, and indexes for a big store

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:30:00

jobs.expired_at marks a job whose data retention deleted (the row answers 404 job_expired);
jobs.texts_hashed_at and job_requests.text_hashed record RERANKQ_KEEP_DOCUMENT_TEXT=false;
low_confidence_cases.exported_at keeps reviewed cases until a label export has them. The indexes
let the sweeper find its work, and the review list and overview answer on 100,000 cases without
scanning them.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('texts_hashed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_jobs_finished_at'), ['finished_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_expired_at'), ['expired_at'], unique=False)
        batch_op.create_index('ix_jobs_texts_hashed_finished', ['texts_hashed_at', 'finished_at'], unique=False)
    with op.batch_alter_table('job_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text_hashed', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('low_confidence_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_cases_status_created', ['status', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_status_top_score', ['status', 'top_score', 'id'], unique=False)
        batch_op.create_index('ix_cases_status_reason', ['status', 'reason'], unique=False)
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_reviews_case_created', ['case_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_case_created')
        batch_op.drop_index('ix_reviews_created_at')
    with op.batch_alter_table('low_confidence_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_reason')
        batch_op.drop_index('ix_cases_status_top_score')
        batch_op.drop_index('ix_cases_status_created')
        batch_op.drop_column('exported_at')
    with op.batch_alter_table('job_requests', schema=None) as batch_op:
        batch_op.drop_column('text_hashed')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_texts_hashed_finished')
        batch_op.drop_index(batch_op.f('ix_jobs_expired_at'))
        batch_op.drop_index(batch_op.f('ix_jobs_finished_at'))
        batch_op.drop_column('texts_hashed_at')
        batch_op.drop_column('expired_at')
