"""Degraded fallback with real processes: a `rerankq worker --fallback` on a tiny embedding model
answers, marked degraded, when no reranker worker is live or a reranker's chunk fails for good."""

from __future__ import annotations

import pytest

from rerankq import RerankClient
from tests.support.stack import make_stack
from tests.support.stack import ServiceProcess
from tests.support.tiny_embedding import build_tiny_embedding_model, reference_cosine

pytestmark = pytest.mark.slow
DEGRADED_TYPE = "cosine-similarity (degraded fallback)"


@pytest.fixture(scope="module")
def embedding_dir(models_dir):
    return build_tiny_embedding_model(models_dir / "tiny-embedding")


@pytest.fixture(scope="module")
def degraded(tmp_path_factory, tiny_qwen3, embedding_dir):
    stack = make_stack(
        tmp_path_factory.mktemp("fallback"), tiny_qwen3,
        RERANKQ_FALLBACK_ENABLED="true", RERANKQ_FALLBACK_MODEL=str(embedding_dir), RERANKQ_FALLBACK_AFTER_S="1",
        RERANKQ_SWEEP_INTERVAL_S="1", RERANKQ_MAX_ATTEMPTS="1",
    )
    try:
        fallback = ServiceProcess(["worker", "--fallback", "--hostname", "fallback"], stack.env(),
                                  stack.root / "worker-fallback.log").start()
        stack.workers.append(fallback)
        stack.wait_worker_ready("fallback", fallback)
        stack.start_api(RERANKQ_SYNC_TIMEOUT_S="60")
        yield stack
    finally:
        stack.stop()


def test_without_a_reranker_worker_the_fallback_answers_marked_degraded(degraded, embedding_dir):
    docs = ["Paris is the capital of France.", "The quick brown fox.", "Berlin is the capital of Germany."]
    with RerankClient(degraded.base_url) as client:
        response = client.rerank("capital of france", docs, top_n=3)
    meta = response.meta
    assert meta.degraded is True and meta.model == str(embedding_dir) and meta.score_type == DEGRADED_TYPE
    assert meta.instruction is None
    assert [r.degraded for r in response.results] == [True] * 3, "every result says it is degraded"
    expected = reference_cosine(embedding_dir, "capital of france", docs)
    assert {r.index: round(r.relevance_score, 5) for r in response.results} == \
        {i: round(s, 5) for i, s in enumerate(expected)}
    beat = degraded.heartbeats()["fallback"]
    assert beat["fallback"] is True and beat["score_type"] == DEGRADED_TYPE
    assert "DEGRADED" in degraded.workers[0].log()


def test_a_chunk_that_fails_on_the_reranker_is_handed_to_the_fallback(degraded, tiny_qwen3, embedding_dir):
    primary = degraded.start_worker("reranker", RERANKQ_FAULT_POISON_MARKER="POISON")
    try:
        with RerankClient(degraded.base_url) as client:
            job = client.submit([{"query": "q", "documents": ["fine", "also fine"]},
                                 {"query": "q", "documents": ["fine", "a POISON document"]}])
            view = client.wait(job.id, timeout=90)
    finally:
        primary.stop()
    healthy, rescued = view.results
    assert not healthy.meta.degraded and healthy.meta.model == str(tiny_qwen3)
    assert rescued.meta.degraded and rescued.meta.model == str(embedding_dir)
    assert rescued.meta.score_type == DEGRADED_TYPE and len(rescued.results) == 2
    assert [r.degraded for r in rescued.results] == [True, True]
    assert [r.degraded for r in healthy.results] == [None, None], "reranker results carry no mark"
    assert "handed to the fallback" in primary.log()


def test_the_fallback_worker_refuses_to_start_unless_enabled(degraded, embedding_dir):
    done = degraded.cli("worker", "--fallback", RERANKQ_FALLBACK_ENABLED="false")
    assert done.returncode != 0 and "RERANKQ_FALLBACK_ENABLED" in done.stderr + done.stdout


def test_framework_adapters_mark_degraded_results(degraded, embedding_dir):
    """Runs after the reranker worker above has stopped: the fallback answers again, and the
    LangChain adapter says so on every document."""
    pytest.importorskip("langchain_core", reason="needs langchain-core (pip install 'rerankq[langchain]')")
    from langchain_core.documents import Document

    from rerankq.integrations.langchain import RerankqRerank

    documents = [Document(page_content=t) for t in ("Paris is in France.", "The quick brown fox.")]
    ranked = RerankqRerank(base_url=degraded.base_url, top_n=2).compress_documents(documents, "france")
    assert len(ranked) == 2
    assert all(d.metadata["rerankq_degraded"] is True and d.metadata["rerankq_model"] == str(embedding_dir)
               for d in ranked)
