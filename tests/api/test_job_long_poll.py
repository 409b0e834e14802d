"""GET /v1/jobs/{id}?wait=N: long polling, woken by the worker's done notice (real stack)."""

from __future__ import annotations

from tests.support.model_card_reference import reference_scores


def submit(client, documents) -> str:
    response = client.post("/v1/jobs", json={"requests": [{"query": "capital of France", "documents": documents}]})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_one_long_poll_returns_the_finished_job(client, tiny_qwen3):
    documents = ["Paris is the capital of France.", "The quick brown fox.", "Berlin is in Germany."]
    job_id = submit(client, documents)
    view = client.get(f"/v1/jobs/{job_id}", params={"wait": 50}).json()
    assert view["status"] == "succeeded", view
    scores = {r["index"]: r["relevance_score"] for r in view["results"][0]["results"]}
    ref = reference_scores(tiny_qwen3, [(None, "capital of France", d) for d in documents])
    assert max(abs(scores[i] - ref[i]) for i in range(3)) <= 1e-5


def test_long_poll_on_a_finished_job_answers_from_the_store(client):
    job_id = submit(client, ["one document"])
    assert client.get(f"/v1/jobs/{job_id}", params={"wait": 50}).json()["status"] == "succeeded"
    # The done notice was consumed by the first call; the second must not need it.
    again = client.get(f"/v1/jobs/{job_id}", params={"wait": 50})
    assert again.status_code == 200 and again.json()["status"] == "succeeded"


def test_wait_is_bounded_and_unknown_jobs_are_404(client):
    too_long = client.get("/v1/jobs/anything", params={"wait": 61})
    assert too_long.status_code == 422 and too_long.json()["details"][0]["field"] == "query.wait"
    missing = client.get("/v1/jobs/no-such-job", params={"wait": 5})
    assert missing.status_code == 404 and missing.json()["details"][0]["field"] == "job_id"
