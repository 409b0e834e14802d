"""hardening: idempotency body hash, chunk claim lease, revoked dashboard sessions, tenant webhook secrets

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
    with op.batch_alter_table('job_chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'revoked_sessions',
        sa.Column('sid', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('sid'),
    )
    op.create_index(op.f('ix_revoked_sessions_expires_at'), 'revoked_sessions', ['expires_at'], unique=False)
    op.create_table(
        'tenant_webhook_secrets',
        sa.Column('tenant', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tenant'),
    )


def downgrade() -> None:
    op.drop_table('tenant_webhook_secrets')
    op.drop_index(op.f('ix_revoked_sessions_expires_at'), table_name='revoked_sessions')
    op.drop_table('revoked_sessions')
    with op.batch_alter_table('job_chunks', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('request_hash')
