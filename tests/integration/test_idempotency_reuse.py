"""An Idempotency-Key sent again with a different body is refused (422 idempotency_key_reused), as
Stripe does; only an exact repeat of the body returns the stored job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from store.db import session_scope
from store.tables import Job
from tests.support.stack import wait_job


def job_count(stack) -> int:
    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_a_key_reused_with_another_body_is_refused(client, stack):
    body = {"requests": [{"query": "reused key", "documents": ["a", "b"]}]}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "reuse-1"})
    assert first.status_code == 202, first.text
    before = job_count(stack)
    for other in ({"requests": [{"query": "reused key", "documents": ["a", "c"]}]},
                  {"requests": [{"query": "reused key", "documents": ["a", "b"], "top_n": 1}]},
                  {"requests": [{"query": "another query", "documents": ["a", "b"]}]}):
        refused = client.post("/v1/jobs", json=other, headers={"Idempotency-Key": "reuse-1"})
        assert refused.status_code == 422, refused.text
        error = refused.json()
        assert error["error"] == "idempotency_key_reused"
        assert error["details"][0]["field"] == "Idempotency-Key"
        assert first.json()["id"] in error["message"] and "different request body" in error["message"]
    # The same body, spelled differently (document objects, key order), is a retry: the stored job.
    same = {"requests": [{"documents": [{"text": "a"}, "b"], "query": "reused key"}]}
    again = client.post("/v1/jobs", json=same, headers={"Idempotency-Key": "reuse-1"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert job_count(stack) == before
    assert wait_job(client, first.json()["id"])["status"] == "succeeded"


def test_concurrent_different_bodies_under_one_key_make_one_job_and_refuse_the_rest(stack):
    bodies = [{"requests": [{"query": f"concurrent reuse {i % 2}", "documents": ["a"]}]} for i in range(6)]
    before = job_count(stack)

    def post(body):
        with stack.client() as own:
            return own.post("/v1/jobs", json=body, headers={"Idempotency-Key": "reuse-concurrent"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(post, bodies))
    assert job_count(stack) == before + 1
    created = [a for a in answers if a.status_code == 202]
    assert len(created) == 1, [a.text for a in answers]
    winner = bodies[answers.index(created[0])]
    for body, answer in zip(bodies, answers):
        if answer is created[0]:
            continue
        if body == winner:
            assert answer.status_code == 200 and answer.json()["id"] == created[0].json()["id"]
        else:
            assert answer.status_code == 422 and answer.json()["error"] == "idempotency_key_reused"
