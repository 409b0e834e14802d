"""Scaling out, with real processes: two workers serving two models (tiny Qwen3, tiny cross-encoder)
on one Redis and one store, each exporting /metrics on its own port, and an API that routes by
`model`, lists what is served and exports request, queue and store metrics.

The store is PostgreSQL when its server binaries are installed (as on hosts sharing one
database), else SQLite; the test prints which.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from commands.redis_server import free_port
from tests.support.stack import make_stack
from commands.pg_cluster import missing_reason
from tests.support.stack import Stack, wait_job, wait_until

pytestmark = pytest.mark.slow  # its own Redis, store and two workers

QWEN, CE, SPARE = "tiny-qwen3", "tiny-ce", "spare-model"


@dataclass
class ScaledStack:
    stack: Stack
    metrics_ports: dict[str, int]  # model -> its worker's metrics port

    def scrape_api(self) -> "Scrape":
        return scrape(f"{self.stack.base_url}/metrics")

    def scrape_worker(self, model: str) -> "Scrape":
        return scrape(f"http://127.0.0.1:{self.metrics_ports[model]}/metrics")


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples named `name` whose labels include `labels` (0 when none)."""
        return sum(v for n, ls, v in self.samples if n == name and labels.items() <= ls.items())

    def has(self, name: str, **labels: str) -> bool:
        return any(n == name and labels.items() <= ls.items() for n, ls, _v in self.samples)


def scrape(url: str) -> Scrape:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


@pytest.fixture(scope="module")
def scaled(request, tmp_path_factory, tiny_qwen3, tiny_cross_encoder):
    root = tmp_path_factory.mktemp("scale-out")
    reason = missing_reason()
    if reason is None:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database("scale_out")
        print(f"\nscale-out store: PostgreSQL ({url})")
    else:
        url = ""
        print(f"\nscale-out store: SQLite, because {reason}")
    stack = make_stack(root, tiny_qwen3, database_url=url, RERANKQ_SYNC_TIMEOUT_S="60")
    ports = {QWEN: free_port(), CE: free_port()}
    try:
        workers = {
            "w-qwen": stack.start_worker("w-qwen", wait_ready=False, RERANKQ_MODEL=str(tiny_qwen3),
                                         RERANKQ_MODEL_NAME=QWEN, RERANKQ_METRICS_PORT=str(ports[QWEN]),
                                         RERANKQ_LOW_TOP_SCORE="1.5"),  # every request is flagged
            "w-ce": stack.start_worker("w-ce", wait_ready=False, RERANKQ_MODEL=str(tiny_cross_encoder),
                                       RERANKQ_MODEL_NAME=CE, RERANKQ_METRICS_PORT=str(ports[CE])),
        }
        for name, worker in workers.items():
            stack.wait_worker_ready(name, worker)
        stack.start_api(RERANKQ_MODEL_NAME=QWEN, RERANKQ_MODELS=f"{QWEN},{SPARE}")
        for port in ports.values():  # the metrics server opens right after the first heartbeat
            wait_until(lambda: _answers(f"http://127.0.0.1:{port}/metrics"), 30, f"worker metrics on :{port}")
        yield ScaledStack(stack, ports)
    finally:
        stack.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_requests_are_routed_by_model_to_the_worker_serving_it(scaled):
    docs = ["Beijing is the capital of China.", "Gravity pulls.", "Paris is in France."]
    before = {model: scaled.scrape_worker(model).value("rerankq_pairs_scored_total") for model in (QWEN, CE)}
    with scaled.stack.client() as client:
        ce = client.post("/v1/rerank", json={"model": CE, "query": "capital of China", "documents": docs})
        default = client.post("/v1/rerank", json={"query": "capital of China", "documents": docs[:2]})
        named = client.post("/v1/rerank", json={"model": QWEN, "query": "capital", "documents": docs[:1]})
        for response in (ce, default, named):
            assert response.status_code == 200, response.text
        assert ce.json()["meta"]["model"] == CE and ce.json()["meta"]["score_type"].startswith("sigmoid")
        for response in (default, named):
            assert response.json()["meta"]["model"] == QWEN
            assert response.json()["meta"]["score_type"].startswith("qwen3")
        payload = {"requests": [{"model": CE, "query": "q", "documents": docs}]}
        job_id = client.post("/v1/jobs", json=payload).json()["id"]
        job = wait_job(client, job_id)
        assert job["status"] == "succeeded" and job["results"][0]["meta"]["model"] == CE
    after = {model: scaled.scrape_worker(model).value("rerankq_pairs_scored_total") for model in (QWEN, CE)}
    assert after[CE] - before[CE] == 6  # 3 sync + 3 async pairs, all on the cross-encoder worker
    assert after[QWEN] - before[QWEN] == 3  # 2 + 1 pairs on the Qwen3 worker


def test_unknown_models_are_refused_naming_the_field_and_what_is_served(scaled):
    with scaled.stack.client() as client:
        response = client.post("/v1/rerank", json={"model": "gpt-rerank", "query": "q", "documents": ["d"]})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "unknown_model" and body["details"][0]["field"] == "model"
        assert set(body["details"][0]["limit"]) == {QWEN, SPARE, CE}
        response = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["d"]},
                                                             {"model": "nope", "query": "q", "documents": ["d"]}]})
        assert response.status_code == 400 and response.json()["details"][0]["field"] == "requests.1.model"


def test_models_endpoint_lists_each_model_with_its_live_workers(scaled):
    with scaled.stack.client() as client:
        response = client.get("/v1/models")
    assert response.status_code == 200, response.text
    cards = {card["id"]: card for card in response.json()["data"]}
    assert list(cards) == [QWEN, SPARE, CE]  # configured first (default leading), then discovered
    assert cards[QWEN]["workers"] == 1 and cards[QWEN]["ready"] and cards[QWEN]["default"]
    assert cards[QWEN]["backend"] == "qwen3" and cards[QWEN]["revision"]
    assert cards[CE]["workers"] == 1 and cards[CE]["backend"] == "seq-cls" and not cards[CE]["default"]
    assert cards[SPARE] == {**cards[SPARE], "workers": 0, "ready": False, "revision": None}


def test_a_configured_model_without_workers_queues_and_shows_in_queue_depth(scaled):
    queue = f"rerankq.{SPARE}.interactive"
    with scaled.stack.client() as client:
        accepted = client.post("/v1/jobs", json={"requests": [{"model": SPARE, "query": "q", "documents": ["a", "b"]}]})
        assert accepted.status_code == 202, accepted.text
        metrics = scaled.scrape_api()
        assert metrics.value("rerankq_queue_depth", queue=queue, model=SPARE, lane="interactive") == 1
        assert metrics.value("rerankq_workers_ready", model=SPARE) == 0
        assert client.get(f"/v1/jobs/{accepted.json()['id']}").json()["status"] == "queued"
        assert client.delete(f"/v1/jobs/{accepted.json()['id']}").status_code == 200


def test_api_and_worker_metrics_move_after_real_jobs(scaled):
    api_before, worker_before = scaled.scrape_api(), scaled.scrape_worker(QWEN)
    with scaled.stack.client() as client:
        sync = client.post("/v1/rerank", json={"query": "capital", "documents": ["a", "b c d e f g", "c"]})
        assert sync.status_code == 200, sync.text
        job_id = client.post("/v1/jobs", json={"requests": [
            {"query": "q1", "documents": ["x", "y z"]},
            {"query": "q2", "documents": ["u", "v", "a much longer document than the others"]}]}).json()["id"]
        assert wait_job(client, job_id)["status"] == "succeeded"
        assert client.post("/v1/rerank", json={"model": "nope", "query": "q", "documents": ["d"]}).status_code == 400
        assert client.post("/v1/rerank", json={"query": "q"}).status_code == 422
    wait_until(lambda: scaled.scrape_api().value("rerankq_queue_unacked_messages") == 0, 30, "acks")
    api, worker = scaled.scrape_api(), scaled.scrape_worker(QWEN)

    def moved(scrape_after, scrape_before, name, **labels):
        return scrape_after.value(name, **labels) - scrape_before.value(name, **labels)

    # API: requests by route template and status, latency, submissions, documents, rejections.
    assert moved(api, api_before, "rerankq_http_requests_total", route="/v1/rerank", method="POST", status="200") == 1
    assert moved(api, api_before, "rerankq_http_requests_total", route="/v1/jobs", method="POST", status="202") == 1
    assert moved(api, api_before, "rerankq_http_requests_total", route="/v1/jobs/{job_id}", method="GET") >= 1
    assert not api.has("rerankq_http_requests_total", route=f"/v1/jobs/{job_id}")  # templates, not paths
    assert moved(api, api_before, "rerankq_http_request_duration_seconds_count", route="/v1/rerank") == 3
    assert moved(api, api_before, "rerankq_jobs_submitted_total", kind="sync", model=QWEN) == 1
    assert moved(api, api_before, "rerankq_jobs_submitted_total", kind="async", model=QWEN) == 1
    assert moved(api, api_before, "rerankq_documents_per_request_count") == 3
    assert moved(api, api_before, "rerankq_documents_per_request_sum") == 8
    assert moved(api, api_before, "rerankq_rejections_total", reason="unknown_model") == 1
    assert moved(api, api_before, "rerankq_rejections_total", reason="invalid_request") == 1
    # API, read at scrape time: queues, workers, store.
    assert api.value("rerankq_broker_up") == 1 and api.value("rerankq_store_up") == 1
    for model in (QWEN, CE, SPARE):
        for lane in ("interactive", "bulk"):
            assert api.has("rerankq_queue_depth", queue=f"rerankq.{model}.{lane}", model=model, lane=lane)
    assert api.value("rerankq_queue_depth", model=QWEN) == 0
    assert api.value("rerankq_workers_ready", model=QWEN) == 1 and api.value("rerankq_workers_ready", model=CE) == 1
    assert api.value("rerankq_broker_visibility_timeout_seconds") == 300
    assert api.has("rerankq_queue_oldest_unacked_age_seconds") and api.has("rerankq_oldest_active_job_age_seconds")

    # Worker: pairs, batches, tokens, waits, requests checked for low confidence, readiness.
    assert moved(worker, worker_before, "rerankq_pairs_scored_total") == 8
    batches = moved(worker, worker_before, "rerankq_batches_total")
    assert 1 <= batches <= 3
    for histogram in ("rerankq_batch_pairs", "rerankq_batch_tokens", "rerankq_batch_padding_efficiency_ratio",
                      "rerankq_inference_duration_seconds", "rerankq_batcher_wait_seconds"):
        assert moved(worker, worker_before, f"{histogram}_count") == batches, histogram
    assert moved(worker, worker_before, "rerankq_batch_pairs_sum") == 8
    real = moved(worker, worker_before, "rerankq_batch_real_tokens_total")
    assert 0 < real < moved(worker, worker_before, "rerankq_batch_padded_tokens_total")  # lengths differ
    assert moved(worker, worker_before, "rerankq_queue_wait_seconds_count") == 3  # one message per request
    assert moved(worker, worker_before, "rerankq_scored_requests_total") == 3
    flagged = moved(worker, worker_before, "rerankq_low_confidence_cases_total")
    padded = moved(worker, worker_before, "rerankq_batch_padded_tokens_total")
    print(f"\n8 pairs in {batches:.0f} forward passes, padding efficiency {real / padded:.2f}, "
          f"{flagged:.0f} of 3 requests flagged low-confidence")
    assert flagged == 3
    assert moved(worker, worker_before, "rerankq_low_confidence_cases_total", reason="low_top_score") == 3
    assert moved(api, api_before, "rerankq_review_backlog_cases", reason="low_top_score") == 3  # the store agrees
    assert worker.value("rerankq_chunk_failures_total") == 0 and worker.has("rerankq_chunk_failures_total",
                                                                                kind="deadline")
    assert worker.value("rerankq_worker_ready") == 1 and worker.value("rerankq_model_load_seconds") > 0
    assert worker.value("rerankq_worker_info", model=QWEN, backend="qwen3", device="cpu") == 1
    assert worker.value("rerankq_worker_last_heartbeat_timestamp_seconds") > worker_before.value(
        "rerankq_worker_last_heartbeat_timestamp_seconds") - 1
    assert not worker.has("rerankq_gpu_memory_allocated_bytes"), "GPU memory is exported only on CUDA workers"
    ce_worker = scaled.scrape_worker(CE)
    assert ce_worker.value("rerankq_worker_info", model=CE, backend="seq-cls") == 1
