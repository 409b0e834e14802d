"""Each refused submission is counted under the code decided where it was refused."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY


def rejections(reason: str) -> float:
    return REGISTRY.get_sample_value("rerankq_rejections_total", {"reason": reason}) or 0.0


@pytest.mark.parametrize("send, reason", [
    (lambda c: c.post("/v1/rerank", json={"query": "q", "documents": ["a"] * 4}), "limit_exceeded"),
    (lambda c: c.post("/v1/rerank", json={"query": "", "documents": ["a"]}), "invalid_request"),
    (lambda c: c.post("/v1/jobs", content=b"{", headers={"content-type": "application/json"}), "malformed_json"),
    (lambda c: c.post("/v1/jobs", content=b"x" * 4096, headers={"content-type": "application/json"}), "body_too_large"),
])
def test_refusals_are_counted_by_their_code(open_app, send, reason):
    before = rejections(reason)
    response = send(open_app)
    assert response.json()["error"] == reason
    assert rejections(reason) == before + 1


def test_a_missing_key_is_counted_as_unauthorized(secured):
    before = rejections("unauthorized")
    assert secured.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]}).status_code == 401
    assert rejections("unauthorized") == before + 1
