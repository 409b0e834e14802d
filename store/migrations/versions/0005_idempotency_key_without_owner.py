"""one job per idempotency key also without an owner

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:00:00

The unique key (owner, idempotency_key) let two jobs share a key when owner is NULL (access
control off): NULLs never compare equal. The index over coalesce(owner, '') does not.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('uq_jobs_owner_idempotency_key', type_='unique')
    op.create_index('uq_jobs_owner_idempotency_key', 'jobs',
                    [sa.text("coalesce(owner, '')"), 'idempotency_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_jobs_owner_idempotency_key', table_name='jobs')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_jobs_owner_idempotency_key', ['owner', 'idempotency_key'])
