"""The worker's sweeps read pending work in bounded pages (SQL LIMIT), yet re-publish all of it.

Real redis-server as the broker, real SQLite store, the worker runtime's own sweep methods; no
model is needed to publish. Page sizes are shrunk so three jobs of 25 chunks span several pages.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, update

from rerankq.schemas import RerankRequest
from core.settings import Settings
from store import pending_work
from store.db import get_engine, session_scope
from store.jobs import create_job, mark_published
from store.migrate import upgrade
from store.tables import JobChunk
from tests.support.stack import RedisProcess
from core.queue import make_celery, messages_in_flight, queues_for
from workers.runtime import WorkerRuntime

CHUNKS = 25


@pytest.fixture()
def sweeper(tmp_path, monkeypatch):
    monkeypatch.setattr(pending_work, "JOBS_PER_SWEEP", 2)
    monkeypatch.setattr(pending_work, "CHUNKS_PER_PAGE", 10)
    redis = RedisProcess(tmp_path / "redis").start()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    settings = Settings(redis_url=redis.url, database_url=url, publish_grace_s=0, model="sweep-model")
    runtime = WorkerRuntime(settings=settings, app=make_celery(settings), backend=None, batcher=None,
                            redis=redis.client(), rules=None, hostname="sweeper")
    try:
        yield runtime
    finally:
        redis.stop()


def add_jobs(runtime: WorkerRuntime, n: int) -> list[str]:
    queue = queues_for(runtime.settings.served_model)[1]
    ids = []
    for i in range(n):
        request = RerankRequest(query=f"q{i}", documents=[f"d{j}" for j in range(CHUNKS)])
        with session_scope(runtime.settings.database_url) as session:
            job, _plans = create_job(session, job_id=f"job-{i}", requests=[request], model=runtime.settings.served_model,
                                     queue=queue, chunk_pairs=1)
        ids.append(job.id)
    return ids


def queued(runtime: WorkerRuntime) -> int:
    return messages_in_flight(runtime.redis, queues_for(runtime.settings.served_model))


@pytest.fixture()
def statements(sweeper):
    seen: list[str] = []
    engine = get_engine(sweeper.settings.database_url)

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def chunk_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT") and re.search(r"\bjob_chunks\b", s)]


def test_the_unpublished_sweep_pages_through_jobs_and_chunks(sweeper, statements):
    add_jobs(sweeper, 3)
    assert sweeper.sweep_unpublished() == 2  # a sweep takes at most JOBS_PER_SWEEP jobs
    assert queued(sweeper) == 2 * CHUNKS
    assert sweeper.sweep_unpublished() == 1  # the rest on the next round
    assert queued(sweeper) == 3 * CHUNKS
    assert sweeper.sweep_unpublished() == 0
    reads = chunk_reads(statements)
    assert reads and all(re.search(r"\bLIMIT\b", s, re.I) for s in reads), reads


def test_the_lost_message_sweep_republishes_only_pending_chunks_page_by_page(sweeper, statements):
    ids = add_jobs(sweeper, 1)
    with session_scope(sweeper.settings.database_url) as session:
        mark_published(session, ids[0])
        session.execute(update(JobChunk).where(JobChunk.job_id == ids[0], JobChunk.chunk_idx < 3)
                        .values(status="done"))
    assert queued(sweeper) == 0  # the broker lost every message
    assert sweeper.sweep_lost() == 1
    assert queued(sweeper) == CHUNKS - 3
    reads = chunk_reads(statements)
    assert reads and all(re.search(r"\bLIMIT\b", s, re.I) for s in reads), reads
