"""Webhooks, the score cache and job failures on a real stack of their own (redis-server, SQLite,
one worker with the score cache on, one API), with a local HTTP receiver on 127.0.0.1 (so the stack
sets RERANKQ_WEBHOOK_ALLOW_PRIVATE; one test checks what happens without it)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from commands.redis_server import free_port
from rerankq.schemas import RerankRequest
from rerankq import InvalidRequest, JobFailed, RerankClient
from rerankq.webhooks import verify_signature
from store.db import session_scope
from store.jobs import cancel_job, create_job
from tests.support.stack import make_stack
from tests.support.stack import wait_until

pytestmark = pytest.mark.slow
SECRET = "test-webhook-secret"


class Receiver:
    """Records each POST (headers, raw body; and its path); answers 302 on the paths in `redirects`,
    else the queued status codes first, then 204."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict, bytes]] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self.redirects: dict[str, str] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.paths.append(self.path)
                receiver.deliveries.append((dict(self.headers), body))
                if self.path in receiver.redirects:
                    self.send_response(302)
                    self.send_header("Location", receiver.redirects[self.path])
                else:
                    self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def features(tmp_path_factory, tiny_qwen3, receiver):
    metrics_port = free_port()
    stack = make_stack(
        tmp_path_factory.mktemp("features"), tiny_qwen3,
        RERANKQ_WEBHOOK_ALLOWED_HOSTS=f"127.0.0.1:{receiver.port},localhost:{receiver.port}",
        RERANKQ_WEBHOOK_SECRET=SECRET, RERANKQ_WEBHOOK_ALLOW_PRIVATE="true",
        RERANKQ_WEBHOOK_BACKOFF_S="0.2", RERANKQ_WEBHOOK_MAX_ATTEMPTS="3", RERANKQ_SWEEP_INTERVAL_S="1",
        RERANKQ_PUBLIC_URL="https://rerank.example.com/", RERANKQ_SCORE_CACHE_ENABLED="true",
        RERANKQ_FAULT_POISON_MARKER="POISON", RERANKQ_MAX_ATTEMPTS="1",
    )
    try:
        stack.start_worker("features", RERANKQ_METRICS_PORT=str(metrics_port))
        stack.start_api()
        stack.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        yield stack
    finally:
        stack.stop()


def deliveries_for(receiver: Receiver, job_id: str) -> list[tuple[dict, bytes]]:
    return [(h, b) for h, b in list(receiver.deliveries) if json.loads(b)["id"] == job_id]


def callback_of(stack, job_id: str) -> dict:
    with stack.client() as client:
        return client.get(f"/v1/jobs/{job_id}").json()["callback"]


def test_webhook_is_signed_and_delivery_is_shown_on_the_job(features, receiver):
    with RerankClient(features.base_url) as client:
        job = client.submit([{"query": "q", "documents": ["a", "b"]}], callback_url=receiver.url("/hooks/done"))
        client.wait(job.id, timeout=60)
    headers, body = wait_until(lambda: (deliveries_for(receiver, job.id) or [None])[0], 30, "the webhook")
    assert verify_signature(SECRET, body, headers, tolerance_s=60)
    assert not verify_signature("another-secret", body, headers)
    assert not verify_signature(SECRET, body.replace(b"succeeded", b"failed"), headers)
    summary = json.loads(body)
    assert summary["status"] == "succeeded" and summary["error"] is None
    assert summary["results_url"] == f"https://rerank.example.com/v1/jobs/{job.id}"
    assert set(summary) == {"id", "status", "created_at", "finished_at", "error", "results_url"}
    callback = wait_until(lambda: (c := callback_of(features, job.id))["status"] == "delivered" and c, 10, "status")
    assert callback["attempts"] == 1 and callback["url"] == receiver.url("/hooks/done")
    assert callback["delivered_at"] is not None


def test_failed_deliveries_are_retried_with_backoff(features, receiver):
    receiver.statuses.extend([500, 503])
    with RerankClient(features.base_url) as client:
        job = client.submit([{"query": "retry me", "documents": ["a"]}], callback_url=receiver.url("/hooks/retry"))
        client.wait(job.id, timeout=60)
    callback = wait_until(lambda: (c := callback_of(features, job.id))["status"] != "pending" and c, 30, "delivery")
    assert callback["status"] == "delivered" and callback["attempts"] == 3
    assert callback["last_error"] == "HTTP 503"
    attempts = deliveries_for(receiver, job.id)
    assert len(attempts) == 3 and all(verify_signature(SECRET, b, h) for h, b in attempts)


def test_a_failed_job_raises_job_failed_and_is_delivered_too(features, receiver):
    with RerankClient(features.base_url) as client:
        job = client.submit([{"query": "q", "documents": ["fine", "a POISON document"]}],
                            callback_url=receiver.url("/hooks/failed"))
        with pytest.raises(JobFailed) as raised:
            client.wait(job.id, timeout=60)
    assert raised.value.job_id == job.id and "poison" in raised.value.job.error
    _headers, body = wait_until(lambda: (deliveries_for(receiver, job.id) or [None])[0], 30, "the webhook")
    summary = json.loads(body)
    assert summary["status"] == "failed" and "poison" in summary["error"]


def test_callback_hosts_outside_the_allow_list_are_refused_at_submit(features, receiver):
    with RerankClient(features.base_url) as client:
        for url in ("http://169.254.169.254/latest/meta-data", f"http://127.0.0.1:{receiver.port + 1}/x",
                    f"ftp://127.0.0.1:{receiver.port}/x"):
            with pytest.raises(InvalidRequest) as raised:
                client.submit([{"query": "q", "documents": ["a"]}], callback_url=url)
            assert raised.value.status == 422 and raised.value.details[0]["field"] == "callback_url"


def test_allow_listed_loopback_callbacks_are_refused_without_allow_private(features, receiver):
    port = free_port()
    api = features.extra_api(port, RERANKQ_WEBHOOK_ALLOW_PRIVATE="false")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for host in ("127.0.0.1", "localhost"):
                response = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}],
                                                         "callback_url": f"http://{host}:{receiver.port}/x"})
                assert response.status_code == 422, response.text
                body = response.json()
                assert body["details"][0]["field"] == "callback_url"
                assert body["message"].startswith(f"callback_url: host '{host}' resolves to ")
                assert "loopback" in body["message"] and "RERANKQ_WEBHOOK_ALLOW_PRIVATE" in body["message"]
    finally:
        api.stop()


def test_redirects_from_the_receiver_are_not_followed(features, receiver):
    receiver.redirects["/hooks/moved"] = receiver.url("/hooks/moved-here")
    with RerankClient(features.base_url) as client:
        job = client.submit([{"query": "redirect me", "documents": ["a"]}], callback_url=receiver.url("/hooks/moved"))
        client.wait(job.id, timeout=60)
    callback = wait_until(lambda: (c := callback_of(features, job.id))["status"] != "pending" and c, 30, "delivery")
    assert callback["status"] == "failed" and callback["delivered_at"] is None
    assert callback["attempts"] == 3  # RERANKQ_WEBHOOK_MAX_ATTEMPTS: each answered 302
    assert callback["last_error"] == "HTTP 302 (redirects are not followed)"
    assert len(deliveries_for(receiver, job.id)) == 3
    assert "/hooks/moved-here" not in receiver.paths


def test_webhooks_are_off_without_an_allow_list(client):
    response = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}],
                                             "callback_url": "http://127.0.0.1:9/x"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "callback_url" and "disabled" in response.json()["message"]


def metric(stack, name: str) -> float:
    for line in httpx.get(stack.metrics_url, timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def pairs_scored(stack) -> int:
    time.sleep(1.2)  # two heartbeats, so the count is current
    return stack.heartbeats()["features"]["pairs"]


def test_cache_hits_return_identical_scores_and_skip_the_model(features):
    docs = [f"cached document {i}" for i in range(5)]
    hits_before = metric(features, "rerankq_score_cache_hits_total")
    with RerankClient(features.base_url) as client:
        first = client.rerank("cache query", docs)
        pairs_after_first = pairs_scored(features)
        second = client.rerank("cache query", docs)
        pairs_after_second = pairs_scored(features)
        other_instruction = client.rerank("cache query", docs, instruction="Judge something else")
        pairs_after_third = pairs_scored(features)
    assert second.results == first.results  # same order, bit-identical scores
    assert pairs_after_second == pairs_after_first  # the model saw none of the second request's pairs
    assert pairs_after_third == pairs_after_second + 5  # another instruction is another score
    assert other_instruction.results != first.results
    assert metric(features, "rerankq_score_cache_hits_total") - hits_before == 5
    keys = features.redis.client().keys("rerankq:score:*")
    assert len(keys) >= 10 and 0 < features.redis.client().ttl(keys[0]) <= 7 * 86400


def test_the_sweeper_delivers_what_no_worker_delivered(features, receiver):
    """A job that ended without a worker delivering its webhook (cancelled, or its worker died)."""
    job_id = str(uuid.uuid4())
    with session_scope(features.database_url) as session:
        create_job(session, job_id=job_id, requests=[RerankRequest(query="q", documents=["a"])], model="m",
                   queue="nowhere", chunk_pairs=8, callback_url=receiver.url("/hooks/swept"))
    with session_scope(features.database_url) as session:
        assert cancel_job(session, job_id)
    _headers, body = wait_until(lambda: (deliveries_for(receiver, job_id) or [None])[0], 30, "the swept webhook")
    assert json.loads(body)["status"] == "cancelled"
    assert wait_until(lambda: callback_of(features, job_id)["status"] == "delivered", 10, "delivered status")
