"""Each store test runs on a fresh SQLite file and, where the server is installed, a fresh
PostgreSQL database, both migrated with `rerankq migrate`'s code path."""

from __future__ import annotations

import uuid

import pytest

from store.migrate import upgrade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    upgrade(url)
    return url
