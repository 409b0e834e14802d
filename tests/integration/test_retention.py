"""Retention on the real stack (redis-server, Celery workers, the API, SQLite): hashed texts, a purge
during live load that loses nothing unexpired, and the worker's sweeper expiring jobs into 404 job_expired.

The confidence rules are pinned so flagging depends only on document counts: a request with two or more
documents is always flagged (RERANKQ_LOW_MARGIN above any gap), one with a single document never is."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from commands.redis_server import free_port
from store.db import session_scope
from store.document_text import text_hash
from store.packed_scores import scored_pairs
from store.retention import JOB_OWNED_TABLES, rows_of_jobs
from store.retention_pass import RetentionPolicy, run_pass
from store.tables import Job, JobRequest, LowConfidenceCase
from tests.support.stack import make_stack
from tests.support.stack import wait_job, wait_until

CHUNK_DEADLINE_S = 3


@pytest.fixture(scope="module")
def retention_stack(tmp_path_factory, tiny_qwen3):
    stack = make_stack(tmp_path_factory.mktemp("retention"), tiny_qwen3, RERANKQ_KEEP_DOCUMENT_TEXT="false",
                       RERANKQ_RETENTION_DAYS="0", RERANKQ_CHUNK_DEADLINE_S=str(CHUNK_DEADLINE_S),
                       RERANKQ_SWEEP_INTERVAL_S="0.5", RERANKQ_LOW_TOP_SCORE="-1", RERANKQ_LOW_MARGIN="1.1",
                       RERANKQ_FLAT_SPREAD="0", RERANKQ_SYNC_TIMEOUT_S="60")
    try:
        stack.start_worker("keeper")
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def requests_of(url: str, job_id: str) -> list[JobRequest]:
    with session_scope(url) as session:
        return list(session.scalars(select(JobRequest).where(JobRequest.job_id == job_id)
                                    .order_by(JobRequest.request_idx)))


def test_unflagged_texts_are_hashed_when_the_job_finishes_and_flagged_ones_kept(retention_stack):
    url = retention_stack.database_url
    with retention_stack.client() as client:
        response = client.post("/v1/rerank", json={"query": "capital of France", "return_documents": True,
                                                   "documents": ["Paris is the capital of France."]})
        assert response.status_code == 200, response.text
        body = response.json()
        # The caller still gets its documents back: they come from its own request, not the store.
        assert body["results"][0]["document"] == {"text": "Paris is the capital of France."}
        (stored,) = requests_of(url, body["id"])
        assert stored.text_hashed and stored.query == text_hash("capital of France")
        assert stored.documents == [text_hash("Paris is the capital of France.")]

        job = client.post("/v1/jobs", json={"requests": [
            {"query": "alone", "documents": ["one document"], "return_documents": True},
            {"query": "flagged", "documents": ["first", "second"], "return_documents": True}]}).json()
        assert wait_job(client, job["id"])["status"] == "succeeded"
        # Hashing follows the finishing commit (before the done notice), so poll the store briefly.
        wait_until(lambda: requests_of(url, job["id"])[0].text_hashed, 10, "the texts to be hashed")
        view = client.get(f"/v1/jobs/{job['id']}").json()
    plain, flagged = requests_of(url, job["id"])
    assert plain.documents == [text_hash("one document")] and plain.query == text_hash("alone")
    assert flagged.documents == ["first", "second"] and flagged.query == "flagged" and not flagged.text_hashed
    assert view["results"][0]["results"][0]["document"] is None  # only its hash is left
    assert sorted(r["document"]["text"] for r in view["results"][1]["results"]) == ["first", "second"]
    with session_scope(url) as session:
        case = session.scalars(select(LowConfidenceCase).where(LowConfidenceCase.job_id == job["id"])).one()
    assert case.request_idx == 1 and case.documents == ["first", "second"]


def owned_rows(session, job_id: str) -> int:
    return sum(session.scalar(select(func.count()).select_from(t).where(rows_of_jobs(t, [job_id])))
               for t in JOB_OWNED_TABLES)


@pytest.mark.slow
def test_a_purge_during_live_load_loses_nothing_that_has_not_expired(retention_stack):
    """Clients submit and long-poll for 12 s while a purge of jobs finished over 2 s ago runs every second
    (in effect CHUNK_DEADLINE_S, the floor). Every job is then accounted for: whole, or expired only after it
    had finished and been read, with none of its rows left behind."""
    url = retention_stack.database_url
    older_than = timedelta(seconds=2)
    policy = RetentionPolicy(jobs=older_than, settle=timedelta(seconds=CHUNK_DEADLINE_S), batch=5)
    stop = threading.Event()
    seen: dict[str, tuple[int, dict]] = {}  # job id -> (documents, what its client read when it finished)
    errors: list[str] = []
    purged: list[int] = []

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=retention_stack.base_url, timeout=60) as client:
            i = 0
            while not stop.is_set():
                documents = [f"client {n} job {i} document {d}" for d in range(1 + i % 3)]
                response = client.post("/v1/jobs", json={"requests": [{"query": f"q{n}-{i}", "documents": documents}]})
                if response.status_code != 202:
                    errors.append(f"submit: {response.status_code} {response.text}")
                    continue
                job_id = response.json()["id"]
                view = client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
                seen[job_id] = (len(documents), view.json() if view.status_code == 200 else
                                {"http": view.status_code, "body": view.text})
                i += 1

    def purge_loop() -> None:
        while not stop.wait(1.0):
            purged.append(run_pass(url, policy).jobs)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(4)] + [threading.Thread(target=purge_loop)]
    for thread in threads:
        thread.start()
    time.sleep(12)
    stop.set()
    for thread in threads:
        thread.join(90)
    purged.append(run_pass(url, policy).jobs)

    assert not errors, errors[:3]
    assert len(seen) >= 20, f"only {len(seen)} jobs ran"
    incomplete = {j: v for j, (n, v) in seen.items() if v.get("status") != "succeeded"
                  or [len(r["results"]) for r in v["results"]] != [n]}
    assert not incomplete, f"clients read unfinished or missing jobs: {list(incomplete.items())[:3]}"
    with session_scope(url) as session:
        jobs = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(list(seen))))}
        leftovers = {j: owned_rows(session, j) for j, job in jobs.items() if job.expired_at is not None}
        whole = {j: scored_pairs(session, j) for j, job in jobs.items() if job.expired_at is None}
    assert set(jobs) == set(seen), "accepted jobs are missing from the store"
    expired = [job for job in jobs.values() if job.expired_at is not None]
    too_young = [job.id for job in expired if job.expired_at - job.finished_at < timedelta(seconds=CHUNK_DEADLINE_S)]
    assert not too_young, f"expired before the floor: {too_young[:3]}"
    assert not any(leftovers.values()), f"rows left behind by expired jobs: {leftovers}"
    assert all(whole[j] == jobs[j].n_pairs for j in whole), "a job that has not expired lost scores"
    print(f"\n{len(seen)} jobs, {len(expired)} expired by {sum(1 for p in purged if p)} purges, "
          f"{len(whole)} whole")
    assert expired and whole, "the purge must have raced live jobs for this test to mean anything"


def test_purge_cli_prints_what_it_removes(retention_stack):
    with retention_stack.client() as client:
        job = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]}).json()
        wait_job(client, job["id"])
    time.sleep(CHUNK_DEADLINE_S + 0.5)
    dry = retention_stack.cli("purge", "--older-than", "0s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete (dry run):" in dry.stdout and "jobs: " in dry.stdout, dry.stdout
    assert "jobs: 0" not in dry.stdout
    with retention_stack.client() as client:
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 200  # a dry run deletes nothing
    real = retention_stack.cli("purge", "--older-than", "0s")
    assert real.returncode == 0, real.stderr
    assert real.stdout.splitlines()[1:2] == dry.stdout.splitlines()[1:2], (dry.stdout, real.stdout)
    assert "kept" in real.stderr  # it says the chunk deadline keeps the newest jobs
    bad = retention_stack.cli("purge", "--older-than", "soon")
    assert bad.returncode != 0 and "30d" in bad.stdout + bad.stderr


def test_the_worker_sweeper_expires_old_jobs_into_404_job_expired(retention_stack):
    # 0.00006 days is about 5 s; the floor (CHUNK_DEADLINE_S) is below that.
    sweeper = retention_stack.start_worker("sweeper", RERANKQ_RETENTION_DAYS="0.00006")
    port = free_port()
    api = retention_stack.extra_api(port, RERANKQ_RETENTION_DAYS="0.00006")  # API and worker share settings
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            job = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a", "b"]}]}).json()
            assert wait_job(client, job["id"])["status"] == "succeeded"
            assert client.get(f"/v1/jobs/{job['id']}").status_code == 200

            def expired():
                response = client.get(f"/v1/jobs/{job['id']}")
                return response if response.status_code == 404 else None

            response = wait_until(expired, 60, "the sweeper to expire the job")
            body = response.json()
            assert body["error"] == "job_expired" and body["details"][0]["field"] == "job_id"
            assert "RERANKQ_RETENTION_DAYS=6e-05" in body["message"] and job["id"] in body["message"]
            assert client.delete(f"/v1/jobs/{job['id']}").json()["error"] == "job_expired"
            assert client.get("/v1/jobs/never-was").json()["error"] == "not_found"
        with session_scope(retention_stack.database_url) as session:
            assert owned_rows(session, job["id"]) == 0
            assert session.scalar(select(func.count()).select_from(LowConfidenceCase)  # cases outlive the job
                                  .where(LowConfidenceCase.job_id == job["id"])) == 1
        # The pass logs what it removed after its transaction commits: the rows can be gone a moment before.
        wait_until(lambda: "retention: jobs:" in sweeper.log(), 10, "the sweeper to log what it removed")
    finally:
        api.stop()
        sweeper.stop()
        retention_stack.workers.remove(sweeper)
