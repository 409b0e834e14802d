"""Duplicate deliveries while a chunk is being scored (sweepers re-publishing, redelivery) neither fail
the job nor score anything twice, and several sweepers publish an unpublished job once.
Real redis-server, SQLite, a real worker process scoring the tiny Qwen3."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import select

from rerankq.schemas import RerankRequest
from core.settings import Settings
from store.db import session_scope
from store.jobs import create_job
from store.packed_scores import stored_scores
from store.tables import Job, JobChunk
from tests.support.stack import make_stack
from tests.support.stack import wait_job, wait_until
from core.queue import make_celery, publish_chunks, queue_name
from workers.runtime import WorkerRuntime

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory, tiny_qwen3):
    # Each forward pass takes a second, so copies arrive while the first delivery is still scoring.
    stack = make_stack(tmp_path_factory.mktemp("duplicates"), tiny_qwen3, RERANKQ_FAULT_STEP_DELAY_S="1.0",
                       RERANKQ_CHUNK_DEADLINE_S="20", RERANKQ_MAX_ATTEMPTS="3")
    try:
        stack.start_worker("dup")
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_copies_of_a_running_chunk_do_not_fail_the_job_or_score_twice(slow_stack):
    settings = Settings(_env_file=None, redis_url=slow_stack.redis.url, database_url=slow_stack.database_url)
    app = make_celery(settings)
    documents = [f"document {i}" for i in range(6)]
    pairs_before = slow_stack.heartbeats()["dup"]["pairs"]
    with slow_stack.client() as client:
        accepted = client.post("/v1/jobs", json={"requests": [{"query": "duplicated", "documents": documents}]})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "running", 30, "the first claim")
        with session_scope(slow_stack.database_url) as session:
            queue = session.get(Job, job_id).queue
        for _copy in range(4):  # more copies than RERANKQ_MAX_ATTEMPTS
            publish_chunks(app, job_id, [0], queue)
        job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job
    with session_scope(slow_stack.database_url) as session:
        assert session.scalar(select(JobChunk.attempts).where(JobChunk.job_id == job_id)) == 1
        assert len(stored_scores(session, job_id)) == 6
    # Each document went through the model once: the copies waited instead of scoring again.
    wait_until(lambda: slow_stack.heartbeats()["dup"]["pairs"] >= pairs_before + 6, 10, "the heartbeat")
    assert slow_stack.heartbeats()["dup"]["pairs"] == pairs_before + 6


def sweeper(settings: Settings, name: str) -> WorkerRuntime:
    """The sweeping part of a worker runtime (no model: sweep_unpublished needs only store and broker)."""
    return WorkerRuntime(settings=settings, app=make_celery(settings), backend=None, batcher=None,
                         redis=redis.Redis.from_url(settings.redis_url), rules=None, hostname=name)


def test_concurrent_sweepers_publish_an_unpublished_job_once(slow_stack):
    queue = queue_name("nobody-serves-this", "bulk")  # no worker consumes it: every message stays countable
    settings = Settings(_env_file=None, redis_url=slow_stack.redis.url, database_url=slow_stack.database_url,
                        publish_grace_s=0)
    with session_scope(slow_stack.database_url) as session:
        for i in range(30):
            create_job(session, job_id=f"unpublished-{i:02d}", model="nobody-serves-this", queue=queue,
                       chunk_pairs=10, requests=[RerankRequest(query="q", documents=["a"])])
    sweepers = [sweeper(settings, f"sweeper-{i}") for i in range(6)]
    start = threading.Barrier(len(sweepers))
    published: list[int] = []

    def sweep(runtime: WorkerRuntime) -> None:
        start.wait()
        published.append(runtime.sweep_unpublished())

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client = slow_stack.redis.client()
    assert sum(published) == 30
    assert client.llen(queue) == 30, "a job was published more than once"
