"""Every refusal of bad input, in-process: a JSON 4xx naming the field (and the limit and its
setting where one applies), with nothing written to the store."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from store.db import session_scope
from store.tables import Job


def job_count(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(Job))


@pytest.fixture()
def nothing_written(database_url):
    before = job_count(database_url)
    yield
    assert job_count(database_url) == before


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/v1/jobs"])
@pytest.mark.parametrize("request_body, field, limit, setting", [
    ({"query": "q", "documents": ["a", "b", "c", "d"]}, "documents", 3, "RERANKQ_MAX_DOCUMENTS"),
    ({"query": "q", "documents": ["a" * 21]}, "documents.0", 20, "RERANKQ_MAX_DOCUMENT_CHARS"),
    ({"query": "q", "documents": [{"text": "a" * 21}]}, "documents.0", 20, "RERANKQ_MAX_DOCUMENT_CHARS"),
    ({"query": "q" * 31, "documents": ["a"]}, "query", 30, "RERANKQ_MAX_QUERY_CHARS"),
    ({"query": "q", "documents": ["a"], "instruction": "i" * 31}, "instruction", 30, "RERANKQ_MAX_QUERY_CHARS"),
])
def test_limits_name_field_limit_and_setting(open_app, nothing_written, path, request_body, field, limit, setting):
    body = {"requests": [request_body]} if path == "/v1/jobs" else request_body
    response = open_app.post(path, json=body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "limit_exceeded" and setting in error["message"]
    expected = f"requests.0.{field}" if path == "/v1/jobs" else field
    assert error["details"][0]["field"] == expected and error["details"][0]["limit"] == limit


def test_requests_per_job_limit(open_app, nothing_written):
    response = open_app.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}] * 3})
    assert response.status_code == 422
    assert response.json()["details"][0] == {"field": "requests", "message": response.json()["message"], "limit": 2}


@pytest.mark.parametrize("content", [
    b'{"requests": [' + b" " * 4096 + b"]}",  # with Content-Length
    iter([b'{"requests": [', b" " * 4096, b"]}"]),  # chunked, no Content-Length
])
def test_body_over_the_size_limit_is_413(open_app, nothing_written, content):
    response = open_app.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["details"][0] == {"field": "body", "message": "too large", "limit": 2048}


@pytest.mark.parametrize("body, status, field", [
    ({"query": "", "documents": ["a"]}, 422, "query"),
    ({"query": "   ", "documents": ["a"]}, 422, "query"),
    ({"query": "q", "documents": []}, 422, "documents"),
    ({"query": "q"}, 422, "documents"),
    ({"documents": ["a"]}, 422, "query"),
    ({"query": "q", "documents": [1, 2]}, 422, "documents.0"),
    ({"query": "q", "documents": [{"txt": "a"}]}, 422, "documents.0"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
    ({"query": "q", "documents": ["a"], "top_n": "many"}, 422, "top_n"),
    ({"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}, 422, "max_tokens_per_doc"),
    ({"query": ["q"], "documents": ["a"]}, 422, "query"),
])
def test_invalid_fields_are_named(open_app, nothing_written, body, status, field):
    response = open_app.post("/v1/rerank", json=body)
    assert response.status_code == status, response.text
    fields = [d["field"] for d in response.json()["details"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields


@pytest.mark.parametrize("content", [b'{"requests": [', b"not json", b"\xff\xfe", b"[]", b'"text"', b"null"])
def test_malformed_or_non_object_bodies_are_4xx_json(open_app, nothing_written, content):
    response = open_app.post("/v1/jobs", content=content, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in ("malformed_json", "invalid_request")


def test_an_empty_job_is_422(open_app, nothing_written):
    response = open_app.post("/v1/jobs", json={"requests": []})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "requests"


@pytest.mark.parametrize("path", ["/v1/jobs/not-a-job", "/v1/jobs/00000000-0000-0000-0000-000000000000"])
def test_unknown_jobs_are_404(open_app, path):
    response = open_app.get(path)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
