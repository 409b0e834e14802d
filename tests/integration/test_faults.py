"""Faults the service survives, each injected into real processes (issue: nothing lost, nothing twice).

Every test runs its own redis-server, SQLite store, workers and API, with a short visibility
timeout so redelivery happens within seconds. Figures (recovery time, attempts) are printed.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from sqlalchemy import func, select

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.packed_scores import stored_scores
from store.tables import Job, JobChunk
from tests.support.broker import queued_chunks
from tests.support.stack import make_stack
from tests.support.model_card_reference import reference_scores
from tests.support.stack import wait_job, wait_until

pytestmark = pytest.mark.slow

FAST_REDELIVERY = dict(
    RERANKQ_VISIBILITY_TIMEOUT_S="8",
    RERANKQ_UNACKED_RESTORE_INTERVAL_S="1",
    RERANKQ_CHUNK_DEADLINE_S="2.5",
    RERANKQ_CHUNK_PAIRS="4",
    RERANKQ_WORKER_CONCURRENCY="4",
    RERANKQ_SWEEP_INTERVAL_S="1",
    RERANKQ_PUBLISH_GRACE_S="1",
)


def jobs_payload(n_jobs: int, n_docs: int, tag: str = "") -> list[dict]:
    return [{"requests": [{"query": f"query {tag}{j}", "documents": [f"document {tag}{j}-{d}" for d in range(n_docs)]}]}
            for j in range(n_jobs)]


def submit_all(client, payloads) -> list[str]:
    ids = []
    for payload in payloads:
        response = client.post("/v1/jobs", json=payload)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def assert_exactly_once(stack, job_ids, payloads, model_dir) -> None:
    """One score per document, and the scores equal an uninterrupted model-card run."""
    with session_scope(stack.database_url) as session:
        for job_id, payload in zip(job_ids, payloads):
            request = payload["requests"][0]
            rows = stored_scores(session, job_id)
            assert [r.doc_index for r in rows] == list(range(len(request["documents"])))
            expected = reference_scores(str(model_dir), [(None, request["query"], d) for d in request["documents"]])
            assert max(abs(r.score - e) for r, e in zip(rows, expected)) < 1e-5


def broker_drained(stack) -> bool:
    client = stack.redis.client()
    queued = sum(client.llen(k) for k in client.scan_iter(match="rerankq.*"))
    return client.hlen("unacked") == 0 and queued == 0


def claimed_unfinished(stack) -> int:
    """Chunks a worker has claimed (attempt counted) and not finished: a kill now must redeliver them."""
    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.count()).select_from(JobChunk)
                              .where(JobChunk.attempts >= 1, JobChunk.status == "pending"))


def max_attempts(stack) -> int:
    with session_scope(stack.database_url) as session:
        return session.scalar(select(func.max(JobChunk.attempts)))


@pytest.fixture()
def fault_stack(tmp_path, tiny_qwen3):
    stacks = []

    def build(**env):
        stack = make_stack(tmp_path / f"s{len(stacks)}", tiny_qwen3, **{**FAST_REDELIVERY, **env})
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


def test_sigkill_worker_with_chunks_in_flight(fault_stack, tiny_qwen3):
    stack = fault_stack()
    victim = stack.start_worker("victim", RERANKQ_FAULT_STEP_DELAY_S="0.4", RERANKQ_MAX_BATCH_PAIRS="4")
    stack.start_api()
    payloads = jobs_payload(6, 8)
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        wait_until(lambda: stack.redis.client().hlen("unacked") >= 2 and claimed_unfinished(stack) >= 1, 30,
                   "chunks in flight, one of them claimed and not finished")
        victim.kill(signal.SIGKILL)
        killed_at = time.monotonic()
        in_flight = stack.redis.client().hlen("unacked")
        stack.start_worker("rescuer")
        finished = [wait_job(client, job_id, timeout_s=90) for job_id in job_ids]
    recovery_s = time.monotonic() - killed_at
    print(f"\nSIGKILL: {in_flight} messages in flight at the kill; all {len(job_ids)} jobs done {recovery_s:.1f}s "
          f"after it (visibility timeout 8s + restore interval 1s); max attempts per chunk {max_attempts(stack)}")
    assert [j["status"] for j in finished] == ["succeeded"] * len(job_ids)
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)
    assert max_attempts(stack) >= 2, "no chunk was redelivered: the kill did not hit work in flight"
    # Redelivery follows the configured visibility timeout and restore interval, not kombu's defaults
    # (1 h, ~100 s); the slack covers the rescuer loading its model and scoring everything.
    assert recovery_s < 8 + 1 + 40, recovery_s
    wait_until(lambda: broker_drained(stack), 20, "empty queues and no unacked messages")


def test_sigterm_worker_returns_or_finishes_what_it_holds(fault_stack, tiny_qwen3):
    stack = fault_stack()
    worker = stack.start_worker("leaving", RERANKQ_FAULT_STEP_DELAY_S="0.3", RERANKQ_MAX_BATCH_PAIRS="4")
    stack.start_api()
    payloads = jobs_payload(5, 8, tag="t")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        wait_until(lambda: stack.redis.client().hlen("unacked") >= 2, 30, "chunks in flight")
        worker.kill(signal.SIGTERM)
        worker.process.wait(timeout=60)
        stack.start_worker("next")
        finished = [wait_job(client, job_id, timeout_s=90) for job_id in job_ids]
    assert worker.process.returncode == 0, worker.log()[-3000:]
    assert [j["status"] for j in finished] == ["succeeded"] * len(job_ids)
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)
    wait_until(lambda: broker_drained(stack), 20, "empty queues and no unacked messages")


def test_redis_restart_keeps_queued_jobs(fault_stack, tiny_qwen3):
    stack = fault_stack()
    stack.start_api()
    payloads = jobs_payload(4, 3, tag="r")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)  # no worker yet: everything stays queued in Redis
        queued_before = sum(stack.redis.client().llen(k) for k in stack.redis.client().scan_iter(match="rerankq.*"))
        stack.redis.stop()
        stack.redis.start()  # same port, same AOF directory
        queued_after = sum(stack.redis.client().llen(k) for k in stack.redis.client().scan_iter(match="rerankq.*"))
        stack.start_worker("after-restart")
        finished = [wait_job(client, job_id, timeout_s=60) for job_id in job_ids]
    assert queued_before == queued_after == 4
    assert [j["status"] for j in finished] == ["succeeded"] * len(job_ids)
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)


def test_redis_restart_while_a_worker_runs(fault_stack, tiny_qwen3):
    stack = fault_stack()
    stack.start_worker("steady", RERANKQ_FAULT_STEP_DELAY_S="0.2", RERANKQ_MAX_BATCH_PAIRS="4")
    stack.start_api()
    payloads = jobs_payload(4, 8, tag="x")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        wait_until(lambda: stack.redis.client().hlen("unacked") >= 1, 30, "chunks in flight")
        stack.redis.stop()
        time.sleep(1.0)
        stack.redis.start()
        finished = [wait_job(client, job_id, timeout_s=120) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * len(job_ids)
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)


def test_sweeper_publishes_a_job_the_api_never_published(fault_stack, tiny_qwen3):
    """Stands for an API that died after committing the job and before publishing it."""
    stack = fault_stack()
    request = RerankRequest(query="orphan", documents=["a", "b", "c"])
    job_id = str(uuid.uuid4())
    with session_scope(stack.database_url) as session:
        create_job(session, job_id=job_id, requests=[request], model=str(tiny_qwen3),
                   queue=f"rerankq.{_key(tiny_qwen3)}.bulk", chunk_pairs=4)
    stack.start_worker("sweeper")
    stack.start_api()
    with stack.client() as client:
        job = wait_job(client, job_id, timeout_s=60)
    assert job["status"] == "succeeded"
    with session_scope(stack.database_url) as session:
        assert session.get(Job, job_id).published_at is not None


def test_a_failed_publish_is_accepted_and_the_sweeper_publishes_it(fault_stack, tiny_qwen3):
    """The API stores the job, then publishing fails: 202 all the same, and nothing is lost."""
    stack = fault_stack()
    stack.start_api(RERANKQ_FAULT_PUBLISH_FAILS="true")
    payloads = jobs_payload(2, 3, tag="unpublished")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        with session_scope(stack.database_url) as session:
            assert [session.get(Job, j).published_at for j in job_ids] == [None, None]
        assert broker_drained(stack), "nothing reached the broker"
        stack.start_worker("sweeper")
        finished = [wait_job(client, job_id, timeout_s=60) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * 2
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)
    assert "that was never published" in stack.workers[0].log()


def test_jobs_whose_messages_the_broker_lost_are_published_again(fault_stack, tiny_qwen3):
    """Published jobs whose messages vanished (a Redis that came back without its data): once the
    broker holds nothing for the model, a worker's sweeper publishes their pending chunks again."""
    stack = fault_stack()
    stack.start_api()
    payloads = jobs_payload(3, 5, tag="lost")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        redis = stack.redis.client()
        queues = [k for k in redis.scan_iter(match="rerankq.*") if redis.type(k) == b"list"]
        queued = queued_chunks(redis, queues)
        assert sorted({job_id for message in queued for job_id, _chunk in message}) == sorted(job_ids)
        assert sum(len(message) for message in queued) == 6  # 3 jobs x 2 chunks of at most 4 pairs
        redis.delete(*queues)
        stack.start_worker("sweeper")
        finished = [wait_job(client, job_id, timeout_s=60) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * 3
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)
    assert "the broker held no message for them" in stack.workers[0].log()
    assert wait_until(lambda: broker_drained(stack), 10, "the broker to drain")


def _key(model_dir) -> str:
    from core.queue import model_key

    return model_key(str(model_dir))


def test_poison_job_fails_after_bounded_attempts_and_others_succeed(fault_stack, tiny_qwen3):
    stack = fault_stack(RERANKQ_FAULT_POISON_MARKER="POISON", RERANKQ_MAX_ATTEMPTS="3")
    stack.start_worker("p")
    stack.start_api()
    good = jobs_payload(3, 4, tag="g")
    poison = {"requests": [{"query": "q", "documents": ["fine", "this one is POISON", "fine too"]}]}
    with stack.client() as client:
        poison_id, *good_ids = submit_all(client, [poison, *good])
        failed = wait_job(client, poison_id, timeout_s=60)
        finished = [wait_job(client, job_id, timeout_s=60) for job_id in good_ids]
    assert failed["status"] == "failed"
    assert "after 3 attempts" in failed["error"] and "poison" in failed["error"]
    assert [j["status"] for j in finished] == ["succeeded"] * 3
    assert_exactly_once(stack, good_ids, good, tiny_qwen3)


def test_hanging_step_kills_the_worker_and_another_finishes(fault_stack, tiny_qwen3):
    stack = fault_stack()
    stuck = stack.start_worker("stuck", RERANKQ_FAULT_HANG_MARKER="HANG", RERANKQ_STEP_TIMEOUT_S="2")
    stack.start_api()
    payload = {"requests": [{"query": "q", "documents": ["a", "this HANGs", "c"]}]}
    with stack.client() as client:
        (job_id,) = submit_all(client, [payload])
        wait_until(lambda: not stuck.alive(), 30, "the watchdog to end the stuck worker")
        stack.start_worker("healthy")
        job = wait_job(client, job_id, timeout_s=60)
    assert stuck.process.returncode == 70, stuck.log()[-2000:]
    assert "exceeded" in stuck.log()
    assert job["status"] == "succeeded"
    assert_exactly_once(stack, [job_id], [payload], tiny_qwen3)


def test_out_of_memory_batches_are_split_not_failed(fault_stack, tiny_qwen3):
    stack = fault_stack()
    worker = stack.start_worker("small-gpu", RERANKQ_FAULT_OOM_ABOVE_PAIRS="2", RERANKQ_MAX_BATCH_WAIT_MS="50")
    stack.start_api()
    payloads = jobs_payload(2, 8, tag="o")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        finished = [wait_job(client, job_id, timeout_s=60) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * 2
    assert "retrying in halves" in worker.log()
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)


def test_two_workers_split_the_work_and_score_nothing_twice(fault_stack, tiny_qwen3):
    stack = fault_stack(RERANKQ_FAULT_STEP_DELAY_S="0.05", RERANKQ_MAX_BATCH_PAIRS="8")
    stack.start_worker("left")
    stack.start_worker("right")
    stack.start_api()
    payloads = jobs_payload(16, 8, tag="w")
    with stack.client() as client:
        job_ids = submit_all(client, payloads)
        finished = [wait_job(client, job_id, timeout_s=90) for job_id in job_ids]
    assert [j["status"] for j in finished] == ["succeeded"] * 16
    time.sleep(1.2)
    pairs = {name: beat["pairs"] for name, beat in stack.heartbeats().items()}
    print(f"\ntwo workers: pairs scored per worker {pairs}")
    assert pairs["left"] > 1 and pairs["right"] > 1  # warm-up counts 0: both took real work
    assert pairs["left"] + pairs["right"] == 16 * 8, "no pair went through the model twice"
    assert_exactly_once(stack, job_ids, payloads, tiny_qwen3)


@pytest.mark.postgres
def test_database_outage_while_a_worker_writes(tmp_path, tiny_qwen3, postgres_cluster):
    url = postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    env = {**FAST_REDELIVERY, "RERANKQ_CHUNK_DEADLINE_S": "20", "RERANKQ_VISIBILITY_TIMEOUT_S": "60"}
    stack = make_stack(tmp_path / "pg", tiny_qwen3, database_url=url, **env)
    try:
        worker = stack.start_worker("writer", RERANKQ_FAULT_STEP_DELAY_S="2")
        stack.start_api()
        payload = {"requests": [{"query": "outage", "documents": ["a", "b", "c"]}]}
        with stack.client() as client:
            (job_id,) = submit_all(client, [payload])
            wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running", 30, "job running")
            postgres_cluster.pause()  # the forward pass (2 s) ends while the database is down
            time.sleep(5)
            postgres_cluster.resume()
            job = wait_job(client, job_id, timeout_s=90)
        assert job["status"] == "succeeded", job
        assert "database unavailable" in worker.log()
        assert_exactly_once(stack, [job_id], [payload], tiny_qwen3)
    finally:
        stack.stop()


def test_load_two_workers_lose_nothing_and_duplicate_nothing(fault_stack):
    from commands.loadtest import format_report, run_load

    stack = fault_stack(RERANKQ_FAULT_STEP_DELAY_S="0")
    stack.start_worker("load-a")
    stack.start_worker("load-b")
    stack.start_api()
    report = run_load(stack.base_url, clients=8, duration_s=10, docs_per_job=10, drain_timeout_s=90)
    print("\nload test (8 clients x 10 s, 2 workers, tiny Qwen3, SQLite):\n" + format_report(report))
    assert report.accepted > 0
    assert report.errors == 0, report.first_error
    assert report.submitted == report.accepted + report.rejected_429
    assert report.lost == 0 and report.duplicated == 0 and report.failed == 0
    assert report.completed == report.accepted


def test_cancelling_a_running_job_stops_its_work(fault_stack):
    stack = fault_stack()
    stack.start_worker("busy", RERANKQ_FAULT_STEP_DELAY_S="0.5", RERANKQ_MAX_BATCH_PAIRS="2")
    stack.start_api()
    with stack.client() as client:
        (job_id,) = submit_all(client, jobs_payload(1, 40, tag="c"))
        wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["progress"]["done"] > 0, 30, "first scores")
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
        wait_until(lambda: broker_drained(stack), 60, "the cancelled job's messages to be dropped")
        view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "cancelled"
    assert view["progress"]["done"] < 40, "every pair was scored although the job was cancelled"
