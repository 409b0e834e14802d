"""Cohere's own Python client (PyPI `cohere`, v2 and v1) against an API with RERANKQ_MODEL_ALIASES
and access control on: only base_url (the service root, no /v1) changes, and the model names
Cohere's examples use are scored by the served model."""

from __future__ import annotations

import cohere
import pytest
from sqlalchemy import select

from commands.redis_server import free_port
from store.db import session_scope
from store.tables import Job
from tests.client.test_cohere_shape import COHERE_DOCS, COHERE_QUERY
from tests.support.model_card_reference import reference_scores

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aliased_api(stack, tiny_qwen3):
    """(base_url, api key) of an API on the shared stack that maps Cohere's model names to the tiny Qwen3."""
    port = free_port()
    aliases = f"rerank-v3.5={tiny_qwen3},rerank-english-v3.0={tiny_qwen3}"
    api = stack.extra_api(port, RERANKQ_MODEL_ALIASES=aliases, RERANKQ_AUTH_ENABLED="true")
    done = stack.cli("keys", "create", "--name", "cohere-client", "--scopes", "submit,read", "--tenant", "cohere")
    assert done.returncode == 0, done.stderr
    yield f"http://127.0.0.1:{port}", done.stdout.strip().splitlines()[-1]
    api.stop()


def expected_ranking(tiny_qwen3) -> list[tuple[int, float]]:
    scores = reference_scores(str(tiny_qwen3), [(None, COHERE_QUERY, doc) for doc in COHERE_DOCS])
    return sorted(enumerate(scores), key=lambda item: (-item[1], item[0]))


def assert_ranked_like_the_reference(results, tiny_qwen3, top_n: int) -> None:
    expected = expected_ranking(tiny_qwen3)[:top_n]
    assert [r.index for r in results] == [index for index, _ in expected]
    for result, (_index, score) in zip(results, expected):
        assert abs(result.relevance_score - score) < 1e-5


def stored_model(stack, job_id: str) -> str:
    with session_scope(stack.database_url) as session:
        return session.scalar(select(Job.model).where(Job.id == job_id))


def test_cohere_client_v2_with_a_cohere_model_name(stack, aliased_api, tiny_qwen3):
    base_url, key = aliased_api
    with cohere.ClientV2(api_key=key, base_url=base_url) as co:
        response = co.rerank(model="rerank-v3.5", query=COHERE_QUERY, documents=COHERE_DOCS, top_n=3)
    assert_ranked_like_the_reference(response.results, tiny_qwen3, top_n=3)
    assert stored_model(stack, response.id) == str(tiny_qwen3)  # the job names the served model, not the alias


def test_cohere_client_v1_with_a_cohere_model_name(stack, aliased_api, tiny_qwen3):
    base_url, key = aliased_api
    co = cohere.Client(api_key=key, base_url=base_url)
    response = co.rerank(model="rerank-english-v3.0", query=COHERE_QUERY, documents=COHERE_DOCS, top_n=2,
                         return_documents=True)
    assert_ranked_like_the_reference(response.results, tiny_qwen3, top_n=2)
    assert [r.document.text for r in response.results] == [COHERE_DOCS[r.index] for r in response.results]
    assert stored_model(stack, response.id) == str(tiny_qwen3)


def test_the_served_name_comes_back_in_meta(aliased_api, tiny_qwen3):
    """meta.model is not in Cohere's schema; its client keeps such fields as extras."""
    base_url, key = aliased_api
    with cohere.ClientV2(api_key=key, base_url=base_url) as co:
        raw = co.with_raw_response.rerank(model="rerank-v3.5", query=COHERE_QUERY, documents=COHERE_DOCS[:2])
    assert raw.response.json()["meta"]["model"] == str(tiny_qwen3)
    assert raw.data.meta.model == str(tiny_qwen3)


def test_cohere_client_errors(aliased_api):
    base_url, key = aliased_api
    with cohere.ClientV2(api_key=key, base_url=base_url) as co:
        with pytest.raises(cohere.BadRequestError) as unknown:
            co.rerank(model="rerank-multilingual-v3.0", query=COHERE_QUERY, documents=COHERE_DOCS)
    assert unknown.value.body["details"][0]["field"] == "model"
    assert "rerank-v3.5" in unknown.value.body["message"]  # the served names and aliases are listed
    with cohere.ClientV2(api_key="rrq_not-a-key", base_url=base_url) as co:
        with pytest.raises(cohere.UnauthorizedError):
            co.rerank(model="rerank-v3.5", query=COHERE_QUERY, documents=COHERE_DOCS)


def test_a_job_may_mix_an_alias_with_the_name_it_stands_for(aliased_api, tiny_qwen3):
    import httpx

    base_url, key = aliased_api
    headers = {"Authorization": f"Bearer {key}"}
    body = {"requests": [{"model": "rerank-v3.5", "query": "q", "documents": ["a"]},
                         {"model": str(tiny_qwen3), "query": "q", "documents": ["b"]}]}
    accepted = httpx.post(f"{base_url}/v1/jobs", json=body, headers=headers, timeout=30)
    assert accepted.status_code == 202, accepted.text
    done = httpx.get(f"{base_url}/v1/jobs/{accepted.json()['id']}", params={"wait": 30}, headers=headers, timeout=60)
    assert done.json()["status"] == "succeeded"
    assert {r["meta"]["model"] for r in done.json()["results"]} == {str(tiny_qwen3)}
    models = httpx.get(f"{base_url}/v1/models", headers=headers, timeout=30).json()["data"]
    card = next(m for m in models if m["id"] == str(tiny_qwen3))
    assert card["aliases"] == ["rerank-english-v3.0", "rerank-v3.5"]
