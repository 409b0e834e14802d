"""The bench drives rerankq through the SDK (commands/bench/clients.py): scores come back in
document order, an overloaded submit is retried after its Retry-After, and each item is one
timed SDK call per client thread (pure unit tests over an httpx mock transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from commands.bench.clients import job_scores, rerank_scores
from commands.bench.pipeline import Request, drive, opened, sdk_job, sdk_rerank
from rerankq import RerankClient

META = {"model": "m", "model_revision": "r", "score_type": "t"}


def ranked(scores: list[float]) -> list[dict]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return [{"index": i, "relevance_score": scores[i]} for i in order]


class FakeService:
    """POST /v1/rerank, POST /v1/jobs (429 once first), GET /v1/jobs/{id}; scores are 1/(1+len)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.jobs: dict[str, list[dict]] = {}
        self.refused = False

    @staticmethod
    def scores(documents: list[str]) -> list[float]:
        return [1 / (1 + len(d)) for d in documents]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/rerank":
            data = json.loads(request.content)
            return httpx.Response(200, json={"id": "s", "results": ranked(self.scores(data["documents"])),
                                             "meta": META})
        if request.method == "POST" and request.url.path == "/v1/jobs":
            if not self.refused:
                self.refused = True
                return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "overloaded", "message": "busy"})
            job_id = f"job-{len(self.jobs)}"
            self.jobs[job_id] = json.loads(request.content)["requests"]
            return httpx.Response(202, json={"id": job_id, "status": "queued"})
        job_id = request.url.path.rsplit("/", 1)[1]
        results = [{"id": job_id, "results": ranked(self.scores(r["documents"])), "meta": META}
                   for r in self.jobs[job_id]]
        return httpx.Response(200, json={"id": job_id, "status": "succeeded", "created_at": "2025-01-01T00:00:00Z",
                                         "progress": {"done": 1, "total": 1}, "results": results})


@pytest.fixture()
def service():
    return FakeService()


def client_of(service: FakeService) -> RerankClient:
    return RerankClient("http://bench", api_key="", max_retries=5, transport=httpx.MockTransport(service))


def test_scores_come_back_in_document_order(service):
    docs = ["a", "bbbb", "cc"]
    with client_of(service) as client:
        assert rerank_scores(client, "q", docs) == service.scores(docs)
        assert job_scores(client, [("q1", docs), ("q2", docs[:2])]) == [service.scores(docs),
                                                                         service.scores(docs[:2])]
    # The 429 was waited out by the SDK: the job was submitted once more, not failed.
    assert service.calls.count("POST /v1/jobs") == 2


def test_drive_times_each_item_through_clients_opened_once(service):
    items = [[Request(f"q{i}", ["x" * i, "y"])] for i in range(1, 7)]
    made = []

    def connect():
        made.append(1)
        return client_of(service)

    with opened(connect, 3) as clients:
        run = drive(clients, items, sdk_rerank)
        assert len(run.latencies) == 6 and all(t >= 0 for t in run.latencies)
        assert run.scores == [[service.scores(item[0].documents)] for item in items]
        jobs = drive(clients[:2], [items[0] + items[1]], sdk_job)
        assert jobs.scores == [[service.scores(items[0][0].documents), service.scores(items[1][0].documents)]]
    assert len(made) == 3  # the second drive reused the warm clients
