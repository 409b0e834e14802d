"""A stack that flags every result (RERANKQ_LOW_TOP_SCORE above any probability), so each scored
request becomes a review case, plus a second API process on it with access control on.

The other rules are pinned so a case's reasons depend only on its document count, never on what
the tiny random model happens to score: every request with two or more documents also has a
small margin (RERANKQ_LOW_MARGIN above any gap), and none is flat (RERANKQ_FLAT_SPREAD=0).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import update

from store.db import session_scope
from store.tables import LowConfidenceCase
from tests.support.stack import Stack, make_stack, secured_api, wait_job


@pytest.fixture(scope="session")
def review_stack(tmp_path_factory, tiny_qwen3) -> Stack:
    stack = make_stack(tmp_path_factory.mktemp("review-stack"), tiny_qwen3, RERANKQ_LOW_TOP_SCORE="1.1",
                       RERANKQ_LOW_MARGIN="1.1", RERANKQ_FLAT_SPREAD="0", RERANKQ_SYNC_TIMEOUT_S="60",
                       RERANKQ_SECRET_KEY="review-tests-secret")
    try:
        stack.start_worker("reviewer")
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def secured_review_api(review_stack):
    """(base URL, {name: key}) of an API process with auth on, over the same store."""
    specs = [("rita", "review,read,submit", "reviewers"), ("sam", "submit,read", "reviewers"), ("ada", "admin", "reviewers"),
             ("rex", "review", "reviewers")]
    with secured_api(review_stack, specs) as api:
        yield api


@pytest.fixture()
def review_client(review_stack):
    with review_stack.client() as client:
        yield client


def seed_cases(client: httpx.Client, requests: list[dict]) -> tuple[str, list[dict]]:
    """Score `requests` as one job through the real queue; returns (tag, their cases in request order).
    Every query gets a unique tag so a test finds exactly its own cases."""
    tag = f"t{uuid.uuid4().hex[:10]}"
    body = {"requests": [{**r, "query": f"{r['query']} {tag}"} for r in requests]}
    accepted = client.post("/v1/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    job = wait_job(client, accepted.json()["id"])
    assert job["status"] == "succeeded", job
    listed = client.get("/v1/reviews", params={"q": tag, "status": "all", "sort": "oldest"})
    assert listed.status_code == 200, listed.text
    cases = sorted(listed.json()["items"], key=lambda c: c["request_idx"])
    assert len(cases) == len(requests), listed.json()
    return tag, cases


def restamp_case(database_url: str, case_id: int, **values) -> None:
    """Change a seeded case in the store (its model, or when it was flagged): one test stack serves one
    model and flags only now, yet the queue's model and date filters need cases they exclude."""
    with session_scope(database_url) as session:
        session.execute(update(LowConfidenceCase).where(LowConfidenceCase.id == case_id).values(**values))
