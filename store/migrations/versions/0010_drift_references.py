"""drift reference windows

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-03 09:40:00

One row per served model: the window of its traffic that score drift is measured against.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drift_references',
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('model_revision', sa.String(length=200), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('model')
    )


def downgrade() -> None:
    op.drop_table('drift_references')
