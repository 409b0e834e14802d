"""The Python SDK against the real running stack (redis-server, worker on the tiny Qwen3, API)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from commands.redis_server import free_port
from rerankq.schemas import JobAccepted, JobStatus, JobView, RerankResponse
from rerankq import (
    AsyncRerankClient,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobTimeout,
    Overloaded,
    RerankClient,
    ServiceUnavailable,
    Unauthorized,
)
from tests.support.model_card_reference import reference_scores

QUERY = "What is the capital of China?"
DOCS = ["The capital of China is Beijing.", "Gravity is a force.", "北京是中国的首都。"]


class RecordingTransport(httpx.HTTPTransport):
    """A real transport that remembers (method, path, status) of every exchange."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response


def assert_model_card_scores(response: RerankResponse, model_dir, query, docs, instruction=None) -> None:
    expected = reference_scores(str(model_dir), [(instruction, query, d) for d in docs])
    for result in response.results:
        assert abs(result.relevance_score - expected[result.index]) < 1e-5
    scores = [r.relevance_score for r in response.results]
    assert scores == sorted(scores, reverse=True)


def test_rerank_returns_typed_ranked_results(stack, tiny_qwen3):
    with RerankClient(stack.base_url) as client:
        response = client.rerank(QUERY, DOCS, top_n=2, return_documents=True)
        custom = client.rerank("who wrote hamlet", ["Shakespeare wrote Hamlet.", {"text": "Paris"}],
                               instruction="Judge literary facts")
    assert isinstance(response, RerankResponse) and len(response.results) == 2
    assert response.results[0].document.text == DOCS[response.results[0].index]
    assert_model_card_scores(response, tiny_qwen3, QUERY, DOCS)
    assert response.meta.model == str(tiny_qwen3) and not response.meta.degraded
    assert custom.meta.instruction == "Judge literary facts"
    assert_model_card_scores(custom, tiny_qwen3, "who wrote hamlet", ["Shakespeare wrote Hamlet.", "Paris"],
                             instruction="Judge literary facts")


def test_rerank_polls_the_job_when_the_server_answers_202(stack, tiny_qwen3):
    port = free_port()
    # 300 pairs cannot be tokenized, scored and stored within 10 ms on any machine this runs on.
    api = stack.extra_api(port, RERANKQ_SYNC_TIMEOUT_S="0.01")
    docs = [f"document {i} about the capital cities of the world" for i in range(300)]
    try:
        transport = RecordingTransport()
        with RerankClient(f"http://127.0.0.1:{port}", transport=transport, poll_interval=0.05) as client:
            response = client.rerank(QUERY, docs, top_n=5)
    finally:
        api.stop()
    assert transport.seen[0] == ("POST", "/v1/rerank", 202)
    assert transport.seen[-1][0] == "GET" and transport.seen[-1][1].startswith("/v1/jobs/")
    top = [docs[r.index] for r in response.results]
    assert len(top) == 5
    assert_model_card_scores(response, tiny_qwen3, QUERY, docs)


def test_submit_wait_get_and_iter_results(stack, tiny_qwen3):
    requests = [{"query": QUERY, "documents": DOCS}, {"query": "gravity", "documents": ["Gravity is a force."],
                                                      "top_n": 1}]
    with RerankClient(stack.base_url) as client:
        accepted = client.submit(requests)
        assert isinstance(accepted, JobAccepted)
        view = client.wait(accepted.id, timeout=60)
        assert isinstance(view, JobView) and view.status is JobStatus.succeeded
        assert view.progress.done == view.progress.total == 4
        assert client.get(accepted.id).status is JobStatus.succeeded
        results = list(client.iter_results(accepted.id))
    assert [r.id for r in results] == [f"{accepted.id}:0", f"{accepted.id}:1"]
    assert_model_card_scores(results[0], tiny_qwen3, QUERY, DOCS)
    assert len(results[1].results) == 1


def test_wait_long_polls_instead_of_polling(stack):
    """One GET held by the server until the job is done, not a GET per poll interval."""
    class QueryRecorder(RecordingTransport):
        def handle_request(self, request):
            self.queries = getattr(self, "queries", []) + [request.url.query.decode()]
            return super().handle_request(request)

    transport = QueryRecorder()
    docs = [f"document {i} on rerankers and queues" for i in range(200)]  # long enough to be running
    with RerankClient(stack.base_url, transport=transport, poll_interval=0.01, max_poll_interval=0.01) as client:
        accepted = client.submit([{"query": QUERY, "documents": docs}])
        view = client.wait(accepted.id, timeout=60)
    assert view.status is JobStatus.succeeded
    gets = [q for (method, _path, _status), q in zip(transport.seen, transport.queries) if method == "GET"]
    assert gets and all(q.startswith("wait=") for q in gets), gets
    assert len(gets) <= 2, f"a short-polling client would have sent one GET per 10 ms: {gets}"


def test_idempotency_key_returns_the_same_job(stack):
    key = f"sdk-test-{uuid.uuid4()}"
    with RerankClient(stack.base_url) as client:
        first = client.submit([{"query": "q", "documents": ["a"]}], idempotency_key=key)
        again = client.submit([{"query": "q", "documents": ["a"]}], idempotency_key=key)
        client.wait(first.id, timeout=60)
    assert again.id == first.id


def test_async_client_is_the_same_api(stack, tiny_qwen3):
    async def scenario():
        async with AsyncRerankClient(stack.base_url) as client:
            ranked = await client.rerank(QUERY, DOCS, top_n=3)
            accepted = await client.submit([{"query": QUERY, "documents": DOCS}])
            results = [r async for r in client.iter_results(accepted.id, timeout=60)]
            view = await client.get(accepted.id)
            return ranked, results, view

    ranked, results, view = asyncio.run(scenario())
    assert_model_card_scores(ranked, tiny_qwen3, QUERY, DOCS)
    assert view.status is JobStatus.succeeded and len(results) == 1
    assert [r.relevance_score for r in results[0].results] == [r.relevance_score for r in ranked.results]


def test_unknown_model_is_an_invalid_request_naming_the_field(stack):
    with RerankClient(stack.base_url) as client:
        with pytest.raises(InvalidRequest) as raised:
            client.rerank("q", ["d"], model="rerank-v3.5")
    error = raised.value
    assert error.status == 400 and error.code == "unknown_model"
    assert error.details[0]["field"] == "model" and "rerank-v3.5" in error.message


def test_overloaded_is_retried_after_retry_after_then_raised(parked_api):
    parked_api.block()
    pauses: list[float] = []
    try:
        with RerankClient(parked_api.url, max_retries=2) as client:
            client._sleep = pauses.append
            with pytest.raises(Overloaded) as raised:
                client.submit([{"query": "q", "documents": ["d"]}])
    finally:
        parked_api.unblock()
    assert pauses == [2.0, 2.0]  # the API's Retry-After, before each of the two retries
    assert raised.value.attempts == 3 and raised.value.retry_after == 2.0 and raised.value.status == 429


def test_overload_that_clears_is_accepted_then_wait_times_out_and_cancel_ends_it(parked_api):
    parked_api.block()
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        parked_api.unblock()  # the queue drains while the client waits

    try:
        with RerankClient(parked_api.url, max_retries=2, poll_interval=0.05) as client:
            client._sleep = pause
            accepted = client.submit([{"query": "q", "documents": ["d"]}])
            client._sleep = time.sleep
            with pytest.raises(JobTimeout) as timed_out:
                client.wait(accepted.id, timeout=0.3)  # no worker serves this API's model
            cancelled = client.cancel(accepted.id)
            with pytest.raises(JobCancelled) as ended:
                client.wait(accepted.id, timeout=5)
    finally:
        parked_api.unblock()
    assert pauses == [2.0] and accepted.status is JobStatus.queued
    assert timed_out.value.job_id == accepted.id and timed_out.value.job.status is JobStatus.queued
    assert cancelled.status is JobStatus.cancelled
    assert isinstance(ended.value, JobFailed) and ended.value.job.status is JobStatus.cancelled


def test_unauthorized_without_a_valid_key_or_scope(secured_api):
    url, keys = secured_api
    with RerankClient(url, api_key="rrq_not_a_key") as client:
        with pytest.raises(Unauthorized) as missing:
            client.rerank("q", ["d"])
    with RerankClient(url, api_key=keys["sdk-reader"]) as client:
        with pytest.raises(Unauthorized) as scope:
            client.submit([{"query": "q", "documents": ["d"]}])
    with RerankClient(url, api_key=keys["sdk-user"]) as client:
        assert len(client.rerank("q", ["a", "b"]).results) == 2
    assert missing.value.status == 401 and scope.value.status == 403 and "submit" in scope.value.message


def test_api_key_and_url_come_from_the_environment(secured_api, monkeypatch):
    url, keys = secured_api
    monkeypatch.setenv("RERANKQ_URL", url)
    monkeypatch.setenv("RERANKQ_API_KEY", keys["sdk-user"])
    with RerankClient() as client:
        assert client.base_url == url and len(client.rerank("q", ["a"]).results) == 1


def test_unreachable_service_is_retried_then_reported(stack):
    pauses: list[float] = []
    with RerankClient(f"http://127.0.0.1:{free_port()}", max_retries=2, backoff_s=0.1) as client:
        client._sleep = pauses.append
        with pytest.raises(ServiceUnavailable) as raised:
            client.get("some-job")
    assert "ConnectError" in str(raised.value)
    assert pauses == [0.1, 0.2]
