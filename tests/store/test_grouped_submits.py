"""The API's group commit of new jobs: the submits that arrive together are one transaction, and
one that cannot be stored (a reused idempotency key, a tenant over its quota) fails alone."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy.exc import IntegrityError

from api.errors import ApiError
from api.job_publish import Submission
from api.submit import _store_jobs
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.group_commit import GroupCommitter
from store.jobs import NewJob, get_job, insert_jobs
from store.tables import JobChunk, JobRequest


def new_job(n_docs: int = 2, owner: str | None = None, key: str | None = None, chunk_pairs: int = 100) -> NewJob:
    request = RerankRequest(query="q", documents=[f"doc {i}" for i in range(n_docs)])
    return NewJob(str(uuid.uuid4()), [request], "m", "q", chunk_pairs, owner=owner, idempotency_key=key)


def stored(url: str, job_id: str) -> bool:
    with session_scope(url) as session:
        return get_job(session, job_id) is not None


def grouped(url: str, items: list[tuple[NewJob, int]]) -> tuple[GroupCommitter, list]:
    """Run the (job, tenant quota) items through a committer as one group: its thread is held until
    all are queued. Nothing is published (no `after`): that is api/job_publish.py's test."""
    committer, gate = GroupCommitter(url), threading.Event()
    committer.submit(lambda _session, payloads: [gate.wait(10) for _ in payloads], None)
    futures = [committer.submit(_store_jobs, Submission(job, limit, None)) for job, limit in items]  # type: ignore[arg-type]
    gate.set()
    for future in futures:
        future.exception(timeout=30)
    return committer, futures


def test_insert_jobs_writes_every_row_of_several_jobs(database_url):
    jobs = [new_job(5, chunk_pairs=2), new_job(1)]
    with session_scope(database_url) as session:
        plans = insert_jobs(session, jobs)
    assert [[(p.chunk_idx, p.doc_start, p.doc_end) for p in job_plans] for job_plans in plans] == [
        [(0, 0, 2), (1, 2, 4), (2, 4, 5)], [(0, 0, 1)]]
    with session_scope(database_url) as session:
        first = get_job(session, jobs[0].job_id)
        assert first is not None and (first.status, first.n_chunks, first.n_pairs) == ("queued", 3, 5)
        assert first.created_at is not None and first.published_at is None
        assert session.query(JobChunk).filter_by(job_id=jobs[0].job_id, status="pending").count() == 3
        request = session.query(JobRequest).filter_by(job_id=jobs[1].job_id).one()
        assert request.documents == ["doc 0"] and request.query_key


def test_submits_that_arrive_together_are_one_transaction(database_url):
    jobs = [new_job() for _ in range(4)]
    committer, futures = grouped(database_url, [(job, 0) for job in jobs])
    assert all(future.exception() is None for future in futures)
    assert (committer.groups, committer.items) == (2, 5)  # the gate's group, then all four jobs in one
    assert all(stored(database_url, job.job_id) for job in jobs)


def test_a_reused_idempotency_key_fails_only_its_own_submit(database_url):
    with session_scope(database_url) as session:
        insert_jobs(session, [new_job(key="k")])
    ok_before, reused, ok_after = new_job(), new_job(key="k"), new_job()
    _committer, futures = grouped(database_url, [(ok_before, 0), (reused, 0), (ok_after, 0)])
    assert isinstance(futures[1].exception(), IntegrityError)
    assert futures[0].exception() is None and futures[2].exception() is None
    assert stored(database_url, ok_before.job_id) and stored(database_url, ok_after.job_id)
    assert not stored(database_url, reused.job_id)


def test_a_tenant_over_its_quota_gets_429_and_the_rest_of_the_group_is_stored(database_url):
    first, over, other_tenant = new_job(2, owner="t1"), new_job(2, owner="t1"), new_job(2, owner="t2")
    _committer, futures = grouped(database_url, [(first, 3), (over, 3), (other_tenant, 3)])
    error = futures[1].exception()
    assert isinstance(error, ApiError) and error.status == 429 and "RERANKQ_MAX_TENANT_PAIRS" in error.message
    assert stored(database_url, first.job_id) and stored(database_url, other_tenant.job_id)
    assert not stored(database_url, over.job_id)


def test_without_a_quota_a_tenant_is_not_counted(database_url):
    jobs = [new_job(50, owner="t1") for _ in range(3)]
    _committer, futures = grouped(database_url, [(job, 0) for job in jobs])
    assert all(future.exception() is None for future in futures)


def test_groups_submitted_to_share_are_one_transaction(database_url):
    from api.job_publish import _mark_published

    with session_scope(database_url) as session:
        earlier = new_job()
        insert_jobs(session, [earlier])
    committer, gate = GroupCommitter(database_url), threading.Event()
    held = committer.submit(lambda _session, payloads: [gate.wait(10) for _ in payloads], None)  # holds the thread
    mark = committer.submit(_mark_published, [earlier.job_id], share_transaction=True)
    later = new_job()
    store = committer.submit(_store_jobs, Submission(later, 0, None), share_transaction=True)  # type: ignore[arg-type]
    gate.set()
    assert mark.result(timeout=30) is None and store.exception(timeout=30) is None and held.result(timeout=30)
    assert (committer.groups, committer.transactions) == (3, 2)  # the gate's, then the mark and the jobs in one
    with session_scope(database_url) as session:
        assert get_job(session, earlier.job_id).published_at is not None
        assert get_job(session, later.job_id) is not None


def test_a_failing_group_in_a_shared_transaction_does_not_take_the_others_down(database_url):
    def broken(_session, payloads):
        raise RuntimeError("this group cannot be written")

    committer, gate = GroupCommitter(database_url), threading.Event()
    committer.submit(lambda _session, payloads: [gate.wait(10) for _ in payloads], None)
    failing = committer.submit(broken, "x", share_transaction=True)
    job = new_job()
    store = committer.submit(_store_jobs, Submission(job, 0, None), share_transaction=True)  # type: ignore[arg-type]
    gate.set()
    assert isinstance(failing.exception(timeout=30), RuntimeError)
    assert store.exception(timeout=30) is None and stored(database_url, job.job_id)
