"""Messages that carry several jobs' chunks (`rerankq.score_chunks`): a real worker scores each
chunk exactly as its own message would, once, and concurrent sync requests (which the API packs
into such messages) all get their own answers. Real redis-server, SQLite, worker and API."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from core.queue import INTERACTIVE, make_celery, publish_chunk_group, queue_name
from core.settings import Settings
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.tables import JobChunk
from tests.support.stack import wait_job

pytestmark = pytest.mark.slow

QUERIES = [(f"query {i}", [f"document {i}.{j} about topic {j % 3}" for j in range(3 + i)]) for i in range(4)]


def sync_scores(client, query: str, documents: list[str]) -> dict[int, float]:
    response = client.post("/v1/rerank", json={"query": query, "documents": documents})
    assert response.status_code == 200, response.text
    return {r["index"]: r["relevance_score"] for r in response.json()["results"]}


def test_a_grouped_message_scores_every_job_once_as_its_own_message_would(stack):
    settings = Settings(_env_file=None, redis_url=stack.redis.url, database_url=stack.database_url,
                        model=str(stack.model_dir))
    queue = queue_name(settings.served_model, INTERACTIVE)
    job_ids = [str(uuid.uuid4()) for _ in QUERIES]
    with session_scope(stack.database_url) as session:
        for job_id, (query, documents) in zip(job_ids, QUERIES):
            create_job(session, job_id=job_id, requests=[RerankRequest(query=query, documents=documents)],
                       model=settings.served_model, queue=queue, chunk_pairs=2)  # 2-3 chunks per job
    with session_scope(stack.database_url) as session:
        chunks = [(job_id, idx) for job_id, idx in session.execute(
            select(JobChunk.job_id, JobChunk.chunk_idx).where(JobChunk.job_id.in_(job_ids))
            .order_by(JobChunk.job_id, JobChunk.chunk_idx))]
    assert len(chunks) == 10
    publish_chunk_group(make_celery(settings), chunks, queue)
    with stack.client() as client:
        for job_id, (query, documents) in zip(job_ids, QUERIES):
            job = wait_job(client, job_id)
            assert job["status"] == "succeeded", job
            grouped = {r["index"]: r["relevance_score"] for r in job["results"][0]["results"]}
            assert grouped == pytest.approx(sync_scores(client, query, documents), abs=1e-6)
    with session_scope(stack.database_url) as session:
        attempts = session.scalars(select(JobChunk.attempts).where(JobChunk.job_id.in_(job_ids))).all()
    assert sorted(attempts) == [1] * 10  # each chunk claimed once


def test_concurrent_sync_requests_each_get_their_own_answer(stack):
    requests = [(f"concurrent query {i}", [f"doc {i}.{j}" for j in range(2 + i % 5)]) for i in range(24)]
    with stack.client() as client:
        alone = [sync_scores(client, query, documents) for query, documents in requests]
        with ThreadPoolExecutor(max_workers=12) as pool:
            together = list(pool.map(lambda r: sync_scores(client, *r), requests))
    for expected, got in zip(alone, together):
        assert got == pytest.approx(expected, abs=1e-5)  # batch company changes padding: float noise only
