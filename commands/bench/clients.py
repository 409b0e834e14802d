"""How `rerankq bench` talks to the service: through the SDK (`rerankq.RerankClient`), as users do.

Each bench client thread holds its own RerankClient (its own connection pool, as each thread held
its own httpx.Client before), and each measured item is timed around the SDK call: POST /v1/jobs
then long polls of GET /v1/jobs/{id}?wait= (the SDK's `wait`), or one POST /v1/rerank. The SDK's
retries apply: an overloaded API's 429 is waited out after its Retry-After, a few times, and any
other refusal fails the run (an error from rerankq.errors).
"""

from __future__ import annotations

from typing import Iterable, Sequence

from rerankq import RerankClient
from rerankq.schemas import RerankResult

TIMEOUT_S = 300.0  # HTTP timeout; the SDK holds each long poll for a third of it (at most 30 s)
# A 429 is retried this many times after its Retry-After. The admission limit (RERANKQ_MAX_QUEUE_DEPTH,
# 10,000 messages) is far above any bench workload: a run refused more often than this has failed.
RETRIES = 5


def bench_client(base_url: str) -> RerankClient:
    """A client of the system under test (started without API keys: none is sent)."""
    return RerankClient(base_url, api_key="", timeout=TIMEOUT_S, max_retries=RETRIES)


def in_document_order(results: Iterable[RerankResult], count: int) -> list[float]:
    """A ranked result list back in document order."""
    scores = [0.0] * count
    for item in results:
        scores[item.index] = item.relevance_score
    return scores


def job_scores(client: RerankClient, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
    """One job of (query, documents) requests: submit, wait for it (no time limit: the bench
    measures how long it takes), scores of each request in document order."""
    job_id = client.submit([{"query": query, "documents": list(documents)} for query, documents in requests]).id
    view = client.wait(job_id, timeout=None)
    if len(view.results or []) != len(requests):
        raise RuntimeError(f"job {job_id} answered {len(view.results or [])} result sets for {len(requests)} requests")
    return [in_document_order(result.results, len(documents))
            for result, (_query, documents) in zip(view.results or [], requests)]


def rerank_scores(client: RerankClient, query: str, documents: Sequence[str]) -> list[float]:
    """One synchronous POST /v1/rerank; scores in document order."""
    return in_document_order(client.rerank(query, documents).results, len(documents))
