"""The whole path with real processes: HTTP -> Redis -> worker (tiny Qwen3) -> SQLite -> HTTP."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.support.model_card_reference import reference_scores
from tests.support.stack import wait_job, wait_until

QUERY = "What is the capital of China?"
DOCS = ["The capital of China is Beijing.", "Gravity is a force.", "北京是中国的首都。", ""]


def test_sync_rerank_matches_the_model_card(client, tiny_qwen3):
    response = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "return_documents": True})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = reference_scores(str(tiny_qwen3), [(None, QUERY, d) for d in DOCS])
    by_index = {r["index"]: r["relevance_score"] for r in body["results"]}
    assert sorted(by_index) == [0, 1, 2, 3]
    for index, score in by_index.items():
        assert abs(score - expected[index]) < 1e-5
    assert [r["relevance_score"] for r in body["results"]] == sorted(by_index.values(), reverse=True)
    assert body["results"][0]["document"]["text"] == DOCS[body["results"][0]["index"]]
    meta = body["meta"]
    assert meta["model"] == str(tiny_qwen3) and meta["model_revision"] and meta["score_type"].startswith("qwen3")
    assert meta["instruction"] == "Given a web search query, retrieve relevant passages that answer the query"


def test_cohere_v2_alias_top_n_and_object_documents(client):
    response = client.post("/v2/rerank", json={"query": QUERY, "documents": [{"text": d} for d in DOCS[:3]],
                                               "top_n": 2})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 2 and "document" not in results[0] or results[0]["document"] is None


def test_async_job_with_many_queries_and_custom_instruction(client, tiny_qwen3):
    requests = [
        {"query": QUERY, "documents": DOCS},
        {"query": "who wrote hamlet", "documents": ["Shakespeare wrote Hamlet.", "Paris is in France."],
         "instruction": "Judge literary facts"},
    ]
    accepted = client.post("/v1/jobs", json={"requests": requests})
    assert accepted.status_code == 202 and accepted.headers["location"] == f"/v1/jobs/{accepted.json()['id']}"
    job = wait_job(client, accepted.json()["id"])
    assert job["status"] == "succeeded" and job["progress"] == {"done": 6, "total": 6}
    assert len(job["results"]) == 2
    second = job["results"][1]
    expected = reference_scores(str(tiny_qwen3), [("Judge literary facts", "who wrote hamlet", d)
                                                  for d in requests[1]["documents"]])
    for result in second["results"]:
        assert abs(result["relevance_score"] - expected[result["index"]]) < 1e-5
    assert second["meta"]["instruction"] == "Judge literary facts"


@pytest.mark.slow
def test_concurrent_small_jobs_share_batches(tmp_path, tiny_qwen3):
    """A slow model (0.3 s a forward pass) lets pairs of other jobs pile up meanwhile: the model
    must then see them together, in fewer forward passes than there are jobs."""
    from tests.support.stack import make_stack

    stack = make_stack(tmp_path / "batching", tiny_qwen3, RERANKQ_FAULT_STEP_DELAY_S="0.3")
    try:
        stack.start_worker("batching")
        stack.start_api()
        before = stack.heartbeats()["batching"]["batches"]
        jobs = 12
        with stack.client() as client, concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            submitted = list(pool.map(lambda i: client.post("/v1/jobs", json={"requests": [
                {"query": f"query {i}", "documents": [f"doc {i} {j}" for j in range(3)]}]}).json()["id"], range(jobs)))
            for job_id in submitted:
                assert wait_job(client, job_id)["status"] == "succeeded"
        wait_until(lambda: stack.heartbeats()["batching"]["pairs"] >= jobs * 3, 10, "a heartbeat after the jobs")
        batches = stack.heartbeats()["batching"]["batches"] - before
        print(f"\n{jobs} jobs of 3 documents took {batches} forward passes")
        assert 0 < batches < jobs, f"{jobs} jobs took {batches} forward passes"
    finally:
        stack.stop()


def test_cancel_unknown_and_finished_jobs(client):
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.delete("/v1/jobs/nope").status_code == 404
    job_id = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["d"]}]}).json()["id"]
    wait_job(client, job_id)
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 409 and response.json()["error"] == "already_finished"


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["workers"] >= 1
    assert client.get("/docs").status_code == 200
    assert "/v1/rerank" in client.get("/openapi.json").json()["paths"]


def test_cancel_a_queued_job(stack):
    """No worker serves this API's model, so the job waits in the queue until it is cancelled."""
    import httpx

    from commands.redis_server import free_port

    port = free_port()
    api = stack.extra_api(port, RERANKQ_MODEL="model-nobody-serves")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as other:
            job_id = other.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]}).json()["id"]
            assert other.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
            cancelled = other.delete(f"/v1/jobs/{job_id}")
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
            view = other.get(f"/v1/jobs/{job_id}").json()
            assert view["status"] == "cancelled" and view["finished_at"] and view["results"] is None
            assert stack.redis.client().exists(f"rerankq:cancelled:{job_id}")
    finally:
        api.stop()
