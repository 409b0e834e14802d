"""Input classes that reached the store or the worker and came back as 500s (issue #12): numbers the
integer columns cannot hold, lone surrogates (UTF-8 cannot encode them), NUL characters (PostgreSQL
text refuses them) in bodies and URLs. Each must get a JSON 4xx naming the field, and write nothing."""

from __future__ import annotations

import pytest

from tests.integration.test_bad_input_and_overload import job_count

BIG_NUMBERS = [2**31, 2**63, 10**30]


def raw_post(client, path: str, text: str):
    """`text` is the JSON as sent: escapes like \\ud800 stay escapes on the wire."""
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


def assert_refused(response, field: str, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    error = response.json()
    assert isinstance(error["error"], str) and isinstance(error["message"], str), error
    fields = [d.get("field") for d in error.get("details", [])]
    assert any(f == field or f.startswith(field + ".") for f in fields if f), error
    return error


@pytest.mark.parametrize("number", BIG_NUMBERS)
@pytest.mark.parametrize("name", ["max_tokens_per_doc", "top_n"])
def test_numbers_beyond_the_integer_columns_are_refused(client, stack, number, name):
    before = job_count(stack)
    response = raw_post(client, "/v1/rerank", f'{{"query": "q", "documents": ["a"], "{name}": {number}}}')
    assert_refused(response, name)
    assert job_count(stack) == before


def test_the_largest_storable_max_tokens_per_doc_is_accepted(client):
    response = client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"], "max_tokens_per_doc": 2**31 - 1})
    assert response.status_code == 200, response.text


def test_a_number_of_thousands_of_digits_is_a_json_4xx(client, stack):
    before = job_count(stack)
    response = raw_post(client, "/v1/rerank", '{"query": "q", "documents": ["a"], "top_n": 1' + "0" * 5000 + "}")
    assert_refused(response, "top_n")
    assert job_count(stack) == before


BAD_TEXT = {"nul": "a\\u0000b", "high_surrogate": "a\\ud800b", "low_surrogate": "a\\udc00b",
            "reversed_pair": "\\udc00\\ud800"}
PLACES = {
    "query": ('{"query": "%s", "documents": ["a"]}', "query"),
    "instruction": ('{"query": "q", "documents": ["a"], "instruction": "%s"}', "instruction"),
    "document": ('{"query": "q", "documents": ["a", "%s"]}', "documents.1"),
    "document_object": ('{"query": "q", "documents": [{"text": "a"}, {"text": "%s"}]}', "documents.1"),
    "model": ('{"query": "q", "documents": ["a"], "model": "%s"}', "model"),
}


@pytest.mark.parametrize("text", list(BAD_TEXT))
@pytest.mark.parametrize("place", list(PLACES))
def test_unstorable_text_is_refused_naming_the_field(client, stack, text, place):
    template, field = PLACES[place]
    before = job_count(stack)
    assert_refused(raw_post(client, "/v1/rerank", template % BAD_TEXT[text]), field)
    job = '{"requests": [{"query": "q", "documents": ["a"]}, %s]}' % (template % BAD_TEXT[text])
    assert_refused(raw_post(client, "/v1/jobs", job), f"requests.1.{field}")
    assert job_count(stack) == before


def test_unstorable_text_in_a_callback_url_and_a_review_note_is_refused(client, stack):
    before = job_count(stack)
    job = '{"requests": [{"query": "q", "documents": ["a"]}], "callback_url": "http://x/\\ud800"}'
    assert_refused(raw_post(client, "/v1/jobs", job), "callback_url")
    assert job_count(stack) == before
    for note in ("\\ud800", "\\u0000"):
        review = raw_post(client, "/v1/reviews/1", '{"decision": "reviewed", "labels": {"0": 1}, "note": "%s"}' % note)
        assert_refused(review, "note")


@pytest.mark.parametrize("path, field", [
    ("/v1/jobs/%00", "path"),
    ("/v1/jobs/abc%00def?wait=0", "path"),
    ("/v1/reviews?model=%00", "model"),
    ("/v1/reviews?q=a%00b", "q"),
    ("/v1/reviews/export?model=%00", "model"),
])
def test_nul_in_the_url_is_a_json_422(client, path, field):
    assert_refused(client.get(path), field)


def test_a_review_body_of_many_labels_is_refused_while_it_is_parsed(client):
    """Any JSON body under /v1/ holds at most 8 values per allowed document (RERANKQ_MAX_DOCUMENTS)."""
    labels = ", ".join(f'"{i}": 1' for i in range(9000))
    response = raw_post(client, "/v1/reviews/1", '{"decision": "reviewed", "labels": {%s}}' % labels)
    error = assert_refused(response, "body")
    assert error["error"] == "limit_exceeded" and error["details"][0]["limit"] == 1000 * 8 + 64
