"""The fast tier: the real FastAPI app in-process (Starlette's TestClient) over a migrated SQLite
file, with no Redis, no worker and no model. Every refusal here happens before anything would be
published, so these tests answer in seconds; the real-process tests cover the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.settings import Settings
from store.db import session_scope
from store.keys import create_key
from store.migrate import upgrade

# Nothing listens here: a test that reached Redis would fail loudly instead of passing by accident.
UNREACHABLE_REDIS = "redis://127.0.0.1:9/0"
LIMITS = dict(max_documents=3, max_requests_per_job=2, max_document_chars=20, max_query_chars=30,
              max_body_bytes=2048)
KEY_SPECS = {"alice": ("submit,read", "acme"), "alice_reader": ("read", "acme"), "bob": ("submit,read", "globex"),
             "rita": ("review", "acme"), "root": ("admin", None)}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('inprocess')) / 'rerankq.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def keys(database_url) -> dict[str, str]:
    made = {}
    with session_scope(database_url) as session:
        for name, (scopes, tenant) in KEY_SPECS.items():
            made[name] = create_key(session, name, scopes.split(","), tenant=tenant)[1]
    return made


def make_client(database_url: str, **overrides) -> TestClient:
    settings = Settings(database_url=database_url, redis_url=UNREACHABLE_REDIS, secret_key="x" * 40,
                        _env_file=None, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def secured(database_url, keys):
    """An app with access control on and small limits."""
    with make_client(database_url, auth_enabled=True, **LIMITS) as client:
        yield client


@pytest.fixture(scope="session")
def open_app(database_url):
    """An app with access control off and small limits."""
    with make_client(database_url, auth_enabled=False, **LIMITS) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
