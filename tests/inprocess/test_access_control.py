"""Access control for every API operation, in-process: no key is 401, a key without the scope is
403, and another tenant's job is 404 (its existence is not revealed)."""

from __future__ import annotations

import re
import uuid

import pytest

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from tests.inprocess.conftest import bearer

# Operations anyone may call: probes and the scrape endpoint (RERANKQ_METRICS_REQUIRE_KEY aside).
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}


def api_operations(client) -> list[tuple[str, str]]:
    schema = client.app.openapi()
    return sorted((method.upper(), path) for path, item in schema["paths"].items() for method in item
                  if path.startswith("/v1/"))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


def test_every_api_operation_needs_a_key(secured):
    operations = api_operations(secured)
    assert len(operations) >= 8  # the schema really lists the API
    for method, path in operations:
        if (method, path) in PUBLIC:
            continue
        response = secured.request(method, concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == "unauthorized" and response.headers["www-authenticate"] == "Bearer"
        wrong = secured.request(method, concrete(path), json={}, headers=bearer("rrq_nothing_here"))
        assert wrong.status_code == 401, (method, path, wrong.text)


@pytest.mark.parametrize("who, method, path, scope", [
    ("alice_reader", "POST", "/v1/jobs", "submit"),
    ("alice_reader", "POST", "/v1/rerank", "submit"),
    ("alice", "GET", "/v1/reviews", "review"),
    ("rita", "POST", "/v1/jobs", "submit"),
    ("rita", "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000", "read"),
])
def test_a_key_without_the_scope_is_403_naming_it(secured, keys, who, method, path, scope):
    body = {"requests": [{"query": "q", "documents": ["a"]}]} if path == "/v1/jobs" else {"query": "q", "documents": ["a"]}
    response = secured.request(method, path, json=body if method == "POST" else None, headers=bearer(keys[who]))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden" and f"'{scope}'" in response.json()["message"]


@pytest.fixture(scope="module")
def acme_job(database_url) -> str:
    job_id = str(uuid.uuid4())
    with session_scope(database_url) as session:
        create_job(session, job_id=job_id, requests=[RerankRequest(query="q", documents=["a", "b"])], model="m",
                   queue="q", chunk_pairs=8, owner="acme")
    return job_id


def test_jobs_are_visible_within_a_tenant_and_to_admins_only(secured, keys, acme_job):
    assert secured.get(f"/v1/jobs/{acme_job}", headers=bearer(keys["alice_reader"])).status_code == 200
    assert secured.get(f"/v1/jobs/{acme_job}", headers=bearer(keys["root"])).status_code == 200
    for method in ("GET", "DELETE"):
        response = secured.request(method, f"/v1/jobs/{acme_job}", headers=bearer(keys["bob"]))
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
