"""A job of 100 queries x 1,000 documents: its JSON and its dashboard page come in bounded pages.

Whole, GET /v1/jobs/{id} was 27 MB and the dashboard's job page 26 MB of HTML reloading every 2 s.
The job goes through the real API into the store; its 100,000 scores are written with the worker's
own store functions (claim, save), since scoring them on the tiny model would take minutes. No
worker runs, so a second big job stays queued for the reload check.
"""

from __future__ import annotations

import pytest

from rerankq.sdk import RerankClient
from store.db import session_scope
from store.work import ScoreMeta, claim_chunk, save_scores
from store.tables import JobChunk
from sqlalchemy import select
from tests.support.stack import make_stack

QUERIES = 100
DOCUMENTS = 1000


def big_job_body(tag: str) -> dict:
    return {"requests": [{"query": f"{tag} query {q}", "documents": [f"document {q}-{d}" for d in range(DOCUMENTS)]}
                         for q in range(QUERIES)]}


def score_everything(database_url: str, job_id: str) -> None:
    """What workers would write: every chunk claimed, then its scores saved (finishing the job)."""
    meta = ScoreMeta(model="tiny", model_revision="r1", score_type="test", instruction=None)
    with session_scope(database_url) as session:
        chunks = list(session.scalars(select(JobChunk.chunk_idx).where(JobChunk.job_id == job_id)))
    for chunk_idx in chunks:
        with session_scope(database_url) as session:
            work = claim_chunk(session, job_id, chunk_idx, max_attempts=3)
            scores = [((work.request_idx * 7 + work.doc_start + i) % 997) / 997 for i in range(len(work.documents))]
            save_scores(session, work, scores, meta, rule=lambda values: [])


@pytest.fixture(scope="module")
def big(tmp_path_factory, tiny_qwen3):
    """(stack, id of a succeeded 100x1000 job, id of a queued one of the same size)."""
    stack = make_stack(tmp_path_factory.mktemp("large-jobs"), tiny_qwen3, RERANKQ_MAX_BODY_BYTES="50000000")
    try:
        stack.start_api()
        with stack.client(timeout=120) as client:
            ids = []
            for tag in ("done", "queued"):
                response = client.post("/v1/jobs", json=big_job_body(tag))
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        score_everything(stack.database_url, ids[0])
        yield stack, ids[0], ids[1]
    finally:
        stack.stop()


def test_get_job_answers_a_bounded_page_with_totals_and_the_next_link(big):
    stack, job_id, _queued = big
    with stack.client(timeout=120) as client:
        first = client.get(f"/v1/jobs/{job_id}")
        assert first.status_code == 200, first.text
        body = first.json()
        print(f"GET /v1/jobs/{{id}} of {QUERIES}x{DOCUMENTS}: first page {len(first.content) / 1e6:.2f} MB")
        assert body["status"] == "succeeded" and body["progress"] == {"done": QUERIES * DOCUMENTS,
                                                                      "total": QUERIES * DOCUMENTS}
        assert len(first.content) < 2_000_000  # was 27 MB
        assert [r["id"] for r in body["results"]] == [f"{job_id}:{i}" for i in range(10)]
        assert body["page"] == {"offset": 0, "limit": 10, "total": QUERIES, "next_offset": 10,
                                "next": f"/v1/jobs/{job_id}?offset=10&limit=10"}

        seen, path = [], f"/v1/jobs/{job_id}?limit=30"
        while path:
            page = client.get(path).json()
            seen.extend(page["results"])
            path = page["page"]["next"]
        assert [r["id"] for r in seen] == [f"{job_id}:{i}" for i in range(QUERIES)]
        assert all(len(r["results"]) == DOCUMENTS for r in seen)
        last = client.get(f"/v1/jobs/{job_id}", params={"offset": 95, "limit": 30}).json()["page"]
        assert last == {"offset": 95, "limit": 30, "total": QUERIES, "next_offset": None, "next": None}
        ranked = seen[42]["results"]
        assert [r["relevance_score"] for r in ranked] == sorted((r["relevance_score"] for r in ranked), reverse=True)


def test_page_size_over_the_limit_is_a_422_naming_the_field(big):
    stack, job_id, _queued = big
    with stack.client() as client:
        response = client.get(f"/v1/jobs/{job_id}", params={"limit": 101})
        offset = client.get(f"/v1/jobs/{job_id}", params={"offset": 2**31})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "query.limit" and response.json()["details"][0]["limit"] == 100
    assert offset.status_code == 422 and offset.json()["details"][0]["field"] == "query.offset"


def test_the_sdk_still_fetches_a_whole_job(big):
    stack, job_id, _queued = big
    with RerankClient(stack.base_url, timeout=120) as client:
        view = client.wait(job_id, timeout=60)
        results = list(client.iter_results(job_id, timeout=60))
    assert [r.id for r in view.results] == [f"{job_id}:{i}" for i in range(QUERIES)]
    assert view.page.next is None and view.page.total == QUERIES
    assert len(results) == QUERIES and all(len(r.results) == DOCUMENTS for r in results)


def test_dashboard_job_page_is_paged_and_a_big_running_job_does_not_reload(big):
    stack, job_id, queued_id = big
    with stack.client(timeout=120) as client:
        page = client.get(f"/dashboard/jobs/{job_id}")
        assert page.status_code == 200
        print(f"dashboard job page of {QUERIES}x{DOCUMENTS}: {len(page.content) / 1e6:.2f} MB")
        assert len(page.content) < 1_500_000  # was 26 MB
        assert page.text.count('data-testid="request"') == 1  # 1,000 documents a request: one a page
        assert 'href="?offset=1"' in page.text and "Requests 0–0 of 100" in page.text
        later = client.get(f"/dashboard/jobs/{job_id}", params={"offset": 99}).text
        assert f"{'done'} query 99" in later and 'data-testid="job-pager-next"' not in later

        running = client.get(f"/dashboard/jobs/{queued_id}").text
        assert 'http-equiv="refresh"' not in running and 'data-testid="job-reload"' in running
        small = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a", "b"]}]}).json()["id"]
        assert 'http-equiv="refresh"' in client.get(f"/dashboard/jobs/{small}").text  # small jobs still reload
