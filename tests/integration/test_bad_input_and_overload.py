"""Bad input gets a clear 4xx naming field and limit, and writes nothing; overload gets 429."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from commands.redis_server import free_port
from store.db import session_scope
from store.tables import Job
from tests.support.stack import wait_job

LIMITS = dict(RERANKQ_MAX_DOCUMENTS="3", RERANKQ_MAX_REQUESTS_PER_JOB="2", RERANKQ_MAX_DOCUMENT_CHARS="20",
              RERANKQ_MAX_QUERY_CHARS="30", RERANKQ_MAX_BODY_BYTES="2048")


@pytest.fixture(scope="module")
def limited(stack):
    port = free_port()
    api = stack.extra_api(port, **LIMITS)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        yield client
    api.stop()


def job_count(stack) -> int:
    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.mark.parametrize("body, field, limit", [
    ({"query": "q", "documents": ["a", "b", "c", "d"]}, "documents", 3),
    ({"query": "q", "documents": ["a" * 21]}, "documents.0", 20),
    ({"query": "q" * 31, "documents": ["a"]}, "query", 30),
    ({"query": "q", "documents": ["a"], "instruction": "i" * 31}, "instruction", 30),
])
def test_limits_name_field_and_limit_and_write_nothing(limited, stack, body, field, limit):
    before = job_count(stack)
    response = limited.post("/v1/rerank", json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "limit_exceeded"
    assert error["details"][0]["field"] == field and error["details"][0]["limit"] == limit
    assert "RERANKQ_" in error["message"]
    assert job_count(stack) == before


def test_requests_per_job_limit(limited, stack):
    before = job_count(stack)
    response = limited.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}] * 3})
    assert response.status_code == 422 and response.json()["details"][0] == {
        "field": "requests", "message": response.json()["message"], "limit": 2}
    assert job_count(stack) == before


def test_body_over_size_limit_is_413(limited, stack):
    before = job_count(stack)
    response = limited.post("/v1/jobs", content=b'{"requests": [' + b" " * 4096 + b"]}",
                            headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["details"][0] == {"field": "body", "message": "too large", "limit": 2048}
    assert job_count(stack) == before


def chunked(body: bytes, piece: int = 512):
    """The body as a generator: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), piece):
        yield body[start:start + piece]


def test_chunked_body_over_size_limit_is_413_and_under_it_is_accepted(limited, stack):
    before = job_count(stack)
    too_big = limited.post("/v1/jobs", content=chunked(b'{"requests": [' + b" " * 4096 + b"]}"),
                           headers={"content-type": "application/json"})
    assert "content-length" not in too_big.request.headers
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["details"][0] == {"field": "body", "message": "too large", "limit": 2048}
    assert job_count(stack) == before
    small = b'{"requests": [{"query": "chunked", "documents": ["a", "b"]}]}'
    accepted = limited.post("/v1/jobs", content=chunked(small, 16), headers={"content-type": "application/json"})
    assert accepted.status_code == 202, accepted.text
    assert wait_job(limited, accepted.json()["id"])["status"] == "succeeded"


@pytest.mark.parametrize("body, status, field", [
    ({"query": "", "documents": ["a"]}, 422, "query"),
    ({"query": "   ", "documents": ["a"]}, 422, "query"),
    ({"query": "q", "documents": []}, 422, "documents"),
    ({"query": "q"}, 422, "documents"),
    ({"query": "q", "documents": [1, 2]}, 422, "documents.0"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
    ({"query": "q", "documents": ["a"], "model": "no-such-model"}, 400, "model"),
])
def test_invalid_requests(client, stack, body, status, field):
    before = job_count(stack)
    response = client.post("/v1/rerank", json=body)
    assert response.status_code == status, response.text
    fields = [d["field"] for d in response.json()["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert job_count(stack) == before


def test_malformed_json_and_empty_job(client, stack):
    before = job_count(stack)
    response = client.post("/v1/jobs", content=b'{"requests": [', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    response = client.post("/v1/jobs", json={"requests": []})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "requests"
    assert job_count(stack) == before


def test_idempotency_key_returns_the_same_job(client, stack):
    body = {"requests": [{"query": "idempotent", "documents": ["a", "b"]}]}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "key-123"})
    before = job_count(stack)
    again = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "key-123"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert job_count(stack) == before
    assert wait_job(client, first.json()["id"])["status"] == "succeeded"


def test_concurrent_repeats_of_an_idempotency_key_make_one_job(stack):
    """Eight clients send the same key at once (access control off: no owner): one job."""
    from concurrent.futures import ThreadPoolExecutor

    body = {"requests": [{"query": "concurrent idempotent", "documents": ["a", "b"]}]}
    before = job_count(stack)

    def post(_):
        with stack.client() as own:
            return own.post("/v1/jobs", json=body, headers={"Idempotency-Key": "key-concurrent"})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert all(a.status_code in (200, 202) for a in answers), [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert [a.status_code for a in answers].count(202) == 1
    assert job_count(stack) == before + 1


def test_queue_deeper_than_the_limit_gets_429_with_retry_after(stack):
    """A model nobody consumes, whose queue already holds one job: the next submit is refused."""
    port = free_port()
    api = stack.extra_api(port, RERANKQ_MAX_QUEUE_DEPTH="1", RERANKQ_MODEL="model-without-workers")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as limited:
            accepted = limited.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]})
            refused = limited.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["b"]}]})
            refused_sync = limited.post("/v1/rerank", json={"query": "q", "documents": ["c"]})
        assert accepted.status_code == 202
        for response in (refused, refused_sync):
            assert response.status_code == 429, response.text
            assert response.headers["retry-after"] == "2" and response.json()["error"] == "overloaded"
            assert "RERANKQ_MAX_QUEUE_DEPTH" in response.json()["message"]
    finally:
        api.stop()


def test_sync_endpoint_answers_202_when_its_timeout_passes(stack):
    """No worker consumes this model's queue: the sync call must come back at its timeout, not hang."""
    port = free_port()
    api = stack.extra_api(port, RERANKQ_SYNC_TIMEOUT_S="1", RERANKQ_MODEL="unserved-model")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as other:
            started = time.monotonic()
            response = other.post("/v1/rerank", json={"query": "q", "documents": ["a"]})
            elapsed = time.monotonic() - started
        assert response.status_code == 202 and response.json()["status"] == "queued"
        assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
        assert elapsed < 10, elapsed
    finally:
        api.stop()
