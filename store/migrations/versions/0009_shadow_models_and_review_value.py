"""shadow models, rescoring and the review queue's value order

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03 09:30:00

job_requests.query_key counts how often a normalized query is seen; low_confidence_cases.case_key
collapses identical requests into one case (case_repeats); shadow_links ties a shadow or rescore
job's requests to the requests they copy.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('query_key', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_job_requests_query_key', ['query_key'], unique=False)
    with op.batch_alter_table('low_confidence_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_low_confidence_cases_case_key', ['case_key'])
    op.create_table(
        'case_repeats',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('request_idx', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['low_confidence_cases.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('job_id', 'request_idx', name='uq_case_repeats_job_request'),
    )
    op.create_index('ix_case_repeats_case_id', 'case_repeats', ['case_id'], unique=False)
    op.create_table(
        'shadow_links',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('job_id', sa.String(length=36), nullable=False),
        sa.Column('request_idx', sa.Integer(), nullable=False),
        sa.Column('source_job_id', sa.String(length=36), nullable=False),
        sa.Column('source_request_idx', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['source_job_id'], ['jobs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('job_id', 'request_idx', name='uq_shadow_links_job_request'),
    )
    op.create_index('ix_shadow_links_source', 'shadow_links', ['source_job_id', 'source_request_idx'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_shadow_links_source', table_name='shadow_links')
    op.drop_table('shadow_links')
    op.drop_index('ix_case_repeats_case_id', table_name='case_repeats')
    op.drop_table('case_repeats')
    with op.batch_alter_table('low_confidence_cases', schema=None) as batch_op:
        batch_op.drop_constraint('uq_low_confidence_cases_case_key', type_='unique')
        batch_op.drop_column('case_key')
    with op.batch_alter_table('job_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_job_requests_query_key')
        batch_op.drop_column('query_key')
