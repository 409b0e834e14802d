"""The store's job lifecycle on real databases: exactly-once scores, conditional transitions."""

from __future__ import annotations

import threading
import uuid
from unittest.mock import patch

import pytest
from sqlalchemy import func, select

from rerankq.schemas import JobStatus, RerankRequest
from store.db import session_scope
from store.job_details import job_detail
from store.jobs import (cancel_job, create_job, find_by_idempotency_key, get_job, job_view, plan_chunks,
                        request_results)
from store.packed_scores import stored_scores, unpack
from store.pending_work import unpublished_jobs
from store.tables import ChunkScores, LowConfidenceCase, utcnow
from store.work import ScoreMeta, claim_chunk, save_scores

META = ScoreMeta(model="m", model_revision="r1", score_type="p_yes", instruction="inst")


def never(_scores):
    return []


def request(n_docs: int, **kwargs) -> RerankRequest:
    return RerankRequest(query="q", documents=[f"doc {i}" for i in range(n_docs)], **kwargs)


def new_job(url: str, requests, chunk_pairs: int = 2, **kwargs) -> str:
    job_id = str(uuid.uuid4())
    with session_scope(url) as session:
        create_job(session, job_id=job_id, requests=requests, model="m", queue="q", chunk_pairs=chunk_pairs, **kwargs)
    return job_id


def score_all(url: str, job_id: str, n_chunks: int, rule=never) -> list[bool]:
    finished = []
    for chunk_idx in range(n_chunks):
        with session_scope(url) as session:
            work = claim_chunk(session, job_id, chunk_idx, max_attempts=3)
        with session_scope(url) as session:
            finished.append(save_scores(session, work, [0.125 * (i + 1) for i in range(len(work.documents))], META, rule))
    return finished


def test_plan_chunks_splits_requests_by_pair_count():
    plans = plan_chunks([request(5), request(2)], chunk_pairs=2)
    assert [(p.request_idx, p.doc_start, p.doc_end) for p in plans] == [(0, 0, 2), (0, 2, 4), (0, 4, 5), (1, 0, 2)]
    assert [p.chunk_idx for p in plans] == [0, 1, 2, 3]


def test_job_runs_to_succeeded_with_ranked_results(database_url):
    job_id = new_job(database_url, [request(3, top_n=2, return_documents=True)], chunk_pairs=2)
    assert score_all(database_url, job_id, 2) == [False, True]
    with session_scope(database_url) as session:
        view = job_view(session, get_job(session, job_id))
    assert view.status is JobStatus.succeeded and view.finished_at is not None
    assert view.progress.done == view.progress.total == 3
    result = view.results[0]
    assert [r.index for r in result.results] == [1, 0]  # chunk 0 scored 0.125, 0.25; chunk 1 scored 0.125
    assert result.results[0].document.text == "doc 1"
    assert result.meta.model_revision == "r1" and result.meta.score_type == "p_yes" and result.meta.instruction == "inst"


def test_redelivered_chunk_writes_nothing_twice(database_url):
    job_id = new_job(database_url, [request(2)], chunk_pairs=2)
    with session_scope(database_url) as session:
        first = claim_chunk(session, job_id, 0, 3)
    with session_scope(database_url) as session:
        assert save_scores(session, first, [0.5, 0.625], META, never) is True
    # A duplicate delivery that raced past the claim still writes nothing new.
    with session_scope(database_url) as session:
        assert save_scores(session, first, [0.9, 0.9], META, never) is False
    with session_scope(database_url) as session:
        assert claim_chunk(session, job_id, 0, 3) is None
        scores = [s.score for s in stored_scores(session, job_id)]
        rows = session.scalar(select(func.count()).select_from(ChunkScores))
    assert scores == [0.5, 0.625] and rows == 1


def test_chunks_finishing_concurrently_finish_the_job_once(database_url):
    job_id = new_job(database_url, [request(16)], chunk_pairs=1)
    works = []
    for chunk_idx in range(16):
        with session_scope(database_url) as session:
            works.append(claim_chunk(session, job_id, chunk_idx, 3))
    finishers = []

    def save(work):
        with session_scope(database_url) as session:
            if save_scores(session, work, [0.5], META, never):
                finishers.append(work.chunk_idx)

    threads = [threading.Thread(target=save, args=(w,)) for w in works]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(finishers) == 1
    with session_scope(database_url) as session:
        assert get_job(session, job_id).status == "succeeded"


def test_attempts_are_bounded(database_url):
    job_id = new_job(database_url, [request(1)])
    for _ in range(2):
        with session_scope(database_url) as session:
            assert claim_chunk(session, job_id, 0, max_attempts=2) is not None
    with session_scope(database_url) as session:
        assert claim_chunk(session, job_id, 0, max_attempts=2) is None
    with session_scope(database_url) as session:
        job = get_job(session, job_id)
        assert job.status == "failed" and "RERANKQ_MAX_ATTEMPTS=2" in job.error


def test_cancelled_job_is_not_claimed_and_cannot_be_cancelled_twice(database_url):
    job_id = new_job(database_url, [request(1)])
    with session_scope(database_url) as session:
        assert cancel_job(session, job_id) is True
        assert cancel_job(session, job_id) is False
    with session_scope(database_url) as session:
        assert claim_chunk(session, job_id, 0, 3) is None
        assert get_job(session, job_id).status == "cancelled"


def test_low_confidence_cases_are_flagged_once(database_url):
    job_id = new_job(database_url, [request(2), request(1)], chunk_pairs=5)
    score_all(database_url, job_id, 2, rule=lambda scores: ["low_top_score"] if max(scores) < 0.2 else [])
    with session_scope(database_url) as session:
        cases = session.scalars(select(LowConfidenceCase).where(LowConfidenceCase.job_id == job_id)).all()
    assert [(c.request_idx, c.reason, c.scores, c.model_revision) for c in cases] == [(1, "low_top_score", [0.125], "r1")]


def test_idempotency_key_finds_the_first_job(database_url):
    job_id = new_job(database_url, [request(1)], idempotency_key="k1", owner="tenant-a")
    with session_scope(database_url) as session:
        assert find_by_idempotency_key(session, "tenant-a", "k1").id == job_id
        assert find_by_idempotency_key(session, "tenant-b", "k1") is None
        assert get_job(session, job_id, owner="tenant-b") is None


def test_unpublished_jobs_are_found_for_the_sweeper(database_url):
    job_id = new_job(database_url, [request(1)])
    with session_scope(database_url) as session:
        assert list(unpublished_jobs(session, utcnow())) == [job_id]


@pytest.mark.parametrize("owner", [None, "tenant-a"])
def test_an_idempotency_key_makes_one_job_per_owner_even_without_an_owner(database_url, owner):
    from sqlalchemy.exc import IntegrityError

    first = new_job(database_url, [request(1)], owner=owner, idempotency_key="same")
    with pytest.raises(IntegrityError):
        new_job(database_url, [request(1)], owner=owner, idempotency_key="same")
    other_owner = new_job(database_url, [request(1)], owner="tenant-b", idempotency_key="same")
    no_key = [new_job(database_url, [request(1)], owner=owner) for _ in range(2)]  # no key: no limit
    with session_scope(database_url) as session:
        assert find_by_idempotency_key(session, owner, "same").id == first
        assert find_by_idempotency_key(session, "tenant-b", "same").id == other_owner
    assert len(set(no_key)) == 2


def test_a_page_of_results_unpacks_only_the_chunks_of_its_requests(database_url):
    # 6 requests of 5 documents, 3 chunks each: a page of requests 2..3 reads 6 of the 18 packed chunks.
    job_id = new_job(database_url, [RerankRequest(query=f"q{r}", documents=[f"doc {r}-{i}" for i in range(5)])
                                    for r in range(6)], chunk_pairs=2)
    score_all(database_url, job_id, 18)
    unpacked = []
    with session_scope(database_url) as session:
        job = get_job(session, job_id)
        whole = request_results(session, job)
        with patch("store.packed_scores.unpack", side_effect=lambda blob: unpacked.append(blob) or unpack(blob)):
            page = request_results(session, job, offset=2, limit=2)
            detail = job_detail(session, job_id, offset=2, max_requests=2)
    assert len(unpacked) == 2 * 6  # the page's chunks, once for the API and once for the dashboard
    assert [r.model_dump() for r in page] == [r.model_dump() for r in whole[2:4]]
    assert [r.request_idx for r in detail.requests] == [2, 3]
    assert [[d.score for d in sorted(r.documents, key=lambda d: d.index)] for r in detail.requests] == [
        [s.relevance_score for s in sorted(r.results, key=lambda s: s.index)] for r in whole[2:4]]
