"""Code written for Cohere's rerank client needs only a base URL change: the request shapes from
Cohere's API reference (v2 and v1) are answered in Cohere's response shape."""

from __future__ import annotations

# From docs.cohere.com "Rerank API (v2)" and the rerank overview (query and documents as there).
COHERE_QUERY = "What is the capital of the United States?"
COHERE_DOCS = [
    "Carson City is the capital city of the American state of Nevada. At the 2010 United States Census, Carson City "
    "had a population of 55,274.",
    "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific Ocean that are a political "
    "division controlled by the United States. Its capital is Saipan.",
    "Charlotte Amalie is the capital and largest city of the United States Virgin Islands. It has about 20,000 "
    "people. The city is on the island of Saint Thomas.",
    "Washington, D.C. (also known as simply Washington or D.C., and officially as the District of Columbia) is the "
    "capital of the United States. It is a federal district.",
]
COHERE_HEADERS = {"Authorization": "Bearer <YOUR API KEY>", "X-Client-Name": "my-rag-app"}


def test_cohere_v2_request_with_the_served_model_name(client, tiny_qwen3):
    body = {"model": str(tiny_qwen3), "query": COHERE_QUERY, "documents": COHERE_DOCS, "top_n": 3,
            "max_tokens_per_doc": 4096}
    response = client.post("/v2/rerank", json=body, headers=COHERE_HEADERS)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= {"id", "results", "meta"}
    assert len(answer["results"]) == 3
    assert all(set(r) >= {"index", "relevance_score"} for r in answer["results"])
    scores = [r["relevance_score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True) and len({r["index"] for r in answer["results"]}) == 3
    assert answer["meta"]["api_version"]["version"] == "2"
    assert answer["meta"]["billed_units"]["search_units"] == 1


def test_cohere_v1_request_without_a_model_and_with_v1_only_fields(client):
    body = {"query": COHERE_QUERY, "documents": [{"text": d} for d in COHERE_DOCS], "top_n": 2,
            "return_documents": True, "max_chunks_per_doc": 10}
    response = client.post("/v1/rerank", json=body, headers=COHERE_HEADERS)
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert result["document"]["text"] == COHERE_DOCS[result["index"]]


def test_a_cohere_model_name_is_refused_with_the_names_to_use(client, tiny_qwen3):
    body = {"model": "rerank-v3.5", "query": COHERE_QUERY, "documents": COHERE_DOCS}
    response = client.post("/v2/rerank", json=body, headers=COHERE_HEADERS)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "unknown_model" and error["details"][0]["field"] == "model"
    assert str(tiny_qwen3) in error["message"]
