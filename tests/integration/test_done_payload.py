"""The finishing worker hands a job's committed scores to a waiting POST /v1/rerank with its done
notice on Redis (core/done_payload.py, api.job_waiters); the API answers from them only when they
cover the whole request, and the answer is the one the store gives."""

from __future__ import annotations

import time

from core.done_payload import decode, encode, notice, parse_notice, response_from
from core.redis_keys import JOBS_DONE_CHANNEL
from rerankq.schemas import RerankRequest

DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "The fox jumps.", "Water boils at 100 C."]


def without_none(value):
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def test_sync_answer_is_what_the_store_holds(client):
    body = {"query": "capital of France", "documents": [DOCS[0], {"text": DOCS[1]}, DOCS[2], DOCS[3]],
            "top_n": 3, "return_documents": True, "instruction": "Judge geography facts"}
    answer = client.post("/v1/rerank", json=body)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    stored = client.get(f"/v1/jobs/{answer.json()['id']}").json()
    assert stored["status"] == "succeeded"
    assert answer.json() == without_none(stored["results"][0])  # POST /v1/rerank leaves out null fields
    assert [r["document"]["text"] for r in answer.json()["results"]] == [DOCS[r["index"]] for r in
                                                                           answer.json()["results"]]


def done_notice(pubsub, job_id: str, timeout_s: float = 60) -> tuple[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1.0)
        if message is not None and message["type"] == "message":
            got, payload = parse_notice(message["data"])
            if got == job_id:
                return got, payload
    raise AssertionError("the worker did not announce the job's end")


def test_the_finishing_worker_publishes_the_committed_scores(client, stack):
    pubsub = stack.redis.client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(JOBS_DONE_CHANNEL)
    try:
        job_id = client.post("/v1/jobs", json={"requests": [{"query": "boiling water", "documents": DOCS}]}).json()["id"]
        _, raw = done_notice(pubsub, job_id)
    finally:
        pubsub.close()
    payload = decode(raw)
    assert payload is not None and payload["request_idx"] == 0 and payload["doc_start"] == 0
    # Pushed after the commit: the store already has the job finished with these very scores.
    view = client.get(f"/v1/jobs/{job_id}").json()  # read once, right after the wake-up
    assert view["status"] == "succeeded"
    stored = {r["index"]: r["relevance_score"] for r in view["results"][0]["results"]}
    assert payload["scores"] == [stored[i] for i in range(len(DOCS))]
    meta = view["results"][0]["meta"]
    assert (payload["model"], payload["model_revision"], payload["score_type"], payload["instruction"]) == (
        meta["model"], meta["model_revision"], meta["score_type"], meta["instruction"])


def test_a_payload_missing_documents_is_not_an_answer():
    request = RerankRequest(query="q", documents=["a", "b", "c"], top_n=2)
    whole = decode(encode(0, 0, [0.1, 0.9, 0.5], "m", "r", "t", "i", False))
    response = response_from(whole, "job", request)
    assert [(r.index, r.relevance_score) for r in response.results] == [(1, 0.9), (2, 0.5)]
    assert response.meta.billed_units == {"search_units": 1, "documents": 3} and response.results[0].degraded is None
    assert response_from(decode(encode(0, 256, [0.1, 0.9, 0.5], "m", "r", "t", "i", False)), "job", request) is None
    assert response_from(decode(encode(0, 0, [0.1, 0.9], "m", "r", "t", "i", False)), "job", request) is None
    assert response_from(decode(encode(1, 0, [0.1, 0.9, 0.5], "m", "r", "t", "i", False)), "job", request) is None
    assert decode(None) is None and decode("cancelled") is None and decode(True) is None
    degraded = response_from(decode(encode(0, 0, [0.2, 0.1, 0.3], "emb", "r", "cos", None, True)), "job", request)
    assert degraded.meta.degraded and all(r.degraded for r in degraded.results)


def test_a_notice_is_the_job_id_with_or_without_a_payload():
    payload = encode(0, 0, [0.5], "m", "r", "t", None, False)
    assert parse_notice(notice("job-1").encode()) == ("job-1", None)
    assert parse_notice(notice("job-1", payload).encode()) == ("job-1", payload)
    assert decode(parse_notice(notice("job-1", payload))[1])["scores"] == [0.5]
