"""Alembic environment: the URL comes from the caller (rerankq migrate) or RERANKQ_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from core.settings import get_settings
from store.db import normalize_url
from store.tables import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return normalize_url(config.attributes.get("url") or get_settings().database_url)


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
