"""The open queue's default order is "most useful first": through the review API (each case's value and
its parts) and in a real headless Chromium, with screenshots in tests/artifacts/.

The cases are written straight into the review stack's store, with chosen scores and repeated queries,
so their values are known; the stack's API judges them with its own settings (see tests/review/conftest.py:
RERANKQ_LOW_TOP_SCORE=1.1, RERANKQ_LOW_MARGIN=1.1)."""

from __future__ import annotations

import uuid

import pytest

from store.db import session_scope
from store.review_value import ValueRules, value_of
from tests.review.test_dashboard_browser import browser, page, shot  # noqa: F401 - fixtures
from tests.store.test_review_value import add_request_case, send

RULES = ValueRules(low_top_score=1.1, low_margin=1.1, frequency_days=7, frequency_saturation=100)
CASES = {  # name: (scores, requests with the same query, identical requests)
    "d-confident": ([1.0, 0.0], 1, 1),
    "c-near-tie": ([0.5, 0.45], 1, 1),
    "b-frequent": ([0.9, 0.1], 10, 1),
    "a-repeated": ([0.3, 0.1], 2, 2),
}


@pytest.fixture()
def valued_cases(review_stack):
    """Cases inserted oldest first in CASES order; returns (tag, {name: case id}, {name: expected value})."""
    tag = uuid.uuid4().hex[:8]
    ids, expected = {}, {}
    with session_scope(review_stack.database_url) as session:
        for name, (scores, seen, identical) in CASES.items():
            query = f"{name} {tag}"
            documents = [f"{name} doc {i}" for i in range(len(scores))]
            for _ in range(identical):
                _job, case_id = add_request_case(session, query, scores, documents=documents)
                ids.setdefault(name, case_id)
            send(session, query, seen - identical)
            expected[name] = value_of(scores, seen, None, RULES)
    return tag, ids, expected


def test_the_api_lists_open_cases_most_useful_first_with_their_parts(review_client, valued_cases):
    tag, ids, expected = valued_cases
    items = review_client.get("/v1/reviews", params={"q": tag}).json()["items"]
    by_value = sorted(CASES, key=lambda n: -expected[n].total)
    assert by_value == ["b-frequent", "a-repeated", "c-near-tie", "d-confident"]  # worked out by hand too
    assert [i["id"] for i in items] == [ids[n] for n in by_value]
    assert [i["id"] for i in review_client.get("/v1/reviews", params={"q": tag, "sort": "newest"}).json()["items"]] \
        == [ids[n] for n in reversed(CASES)], "another sort is still available"
    for item in items:
        name = next(n for n in CASES if ids[n] == item["id"])
        value = item["value"]
        assert value["total"] == pytest.approx(expected[name].total, abs=1e-6)
        assert value["uncertainty"] == pytest.approx(expected[name].uncertainty, abs=1e-6)
        assert value["frequency"] == pytest.approx(expected[name].frequency, abs=1e-6)
        assert value["seen"] == CASES[name][1] and value["disagreement"] == 0.0
        assert item["repeats"] == CASES[name][2]
    case = review_client.get(f"/v1/reviews/{ids['a-repeated']}").json()
    assert case["repeats"] == 2 and len(case["repeat_jobs"]) == 2 and case["value"]["seen"] == 2
    assert case["repeat_jobs"][0]["job_id"] == case["job_id"]


def test_the_dashboard_queue_defaults_to_most_useful_first(page, review_stack, valued_cases):  # noqa: F811
    tag, ids, expected = valued_cases
    page.goto(f"{review_stack.base_url}/dashboard/queue?q={tag}")
    assert page.get_by_test_id("filter-sort").input_value() == "value"
    rows = page.get_by_test_id("case-row").locator(".case-link").all_inner_texts()
    assert rows == [f"{n} {tag}" for n in ("b-frequent", "a-repeated", "c-near-tie", "d-confident")]
    shown = [float(v) for v in page.get_by_test_id("case-value").evaluate_all("els => els.map(e => e.dataset.value)")]
    assert shown == sorted(shown, reverse=True)
    assert page.get_by_test_id("repeats").all_inner_texts() == ["×2 repeats"]
    shot(page, "queue-most-useful-first")

    page.get_by_test_id("filter-sort").select_option("newest")
    page.get_by_test_id("apply-filters").click()
    rows = page.get_by_test_id("case-row").locator(".case-link").all_inner_texts()
    assert rows == [f"{n} {tag}" for n in reversed(CASES)]

    page.goto(f"{review_stack.base_url}/dashboard/cases/{ids['a-repeated']}?q={tag}")
    parts = page.get_by_test_id("case-value").inner_text()
    assert f"value {expected['a-repeated'].total:.2f}" in parts and "2 requests with this query recently" in parts
    page.get_by_test_id("case-repeats").locator("summary").click()
    assert page.get_by_test_id("case-repeats").locator("li").count() == 2
    shot(page, "case-value-and-repeats")


def test_compare_endpoint_needs_the_review_or_admin_scope(secured_review_api):
    import httpx

    base, keys = secured_review_api
    params = {"baseline": "a", "candidate": "b"}
    for name, status in (("sam", 403), ("rex", 200), ("ada", 200)):  # submit+read, review, admin
        response = httpx.get(f"{base}/v1/models/compare", params=params, timeout=60,
                             headers={"Authorization": f"Bearer {keys[name]}"})
        assert response.status_code == status, (name, response.text)
    assert httpx.get(f"{base}/v1/models/compare", params=params, timeout=60).status_code == 401
