"""Admission control: in-flight messages count against the queue limit, concurrent submits cannot
overshoot it, and each tenant has a quota of queued and running pairs so one tenant cannot fill the
queue for everyone. Real API processes, redis-server and SQLite; the model has no worker, so
accepted jobs stay queued."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from commands.redis_server import free_port
from core.settings import Settings
from core.queue import make_celery, queues_for
from tests.support.broker import queued_chunks

pytestmark = pytest.mark.slow


def submit(base: str, documents: list[str], key: str = "") -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
        return client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": documents}]})


def test_concurrent_submits_cannot_overshoot_the_queue_limit(stack):
    model = f"unserved-{uuid.uuid4().hex[:6]}"
    port = free_port()
    api = stack.extra_api(port, RERANKQ_MAX_QUEUE_DEPTH="3", RERANKQ_MODEL=model)
    try:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: submit(f"http://127.0.0.1:{port}", [f"doc {i}"]), range(12)))
    finally:
        api.stop()
    accepted = {a.json()["id"] for a in answers if a.status_code == 202}
    assert {a.status_code for a in answers} <= {202, 429}, [a.text for a in answers]
    assert 3 <= len(accepted) < 12, [a.text for a in answers]  # jobs published together share a message
    queued = queued_chunks(stack.redis.client(), queues_for(model))
    assert len(queued) <= 3, queued  # never more messages than the limit...
    assert sorted(job_id for message in queued for job_id, _chunk in message) == sorted(accepted)  # ...nor lost



def test_messages_on_a_worker_count_against_the_queue_limit(stack):
    model = f"unserved-{uuid.uuid4().hex[:6]}"
    port = free_port()
    api = stack.extra_api(port, RERANKQ_MAX_QUEUE_DEPTH="1", RERANKQ_MODEL=model)
    app = make_celery(Settings(_env_file=None, redis_url=stack.redis.url, model=model))
    try:
        base = f"http://127.0.0.1:{port}"
        assert submit(base, ["a"]).status_code == 202
        with app.connection_for_read() as connection:
            taken = connection.SimpleQueue(queues_for(model)[0])
            message = taken.get(timeout=10)  # a worker took it and is scoring it: in flight, not queued
            assert sum(stack.redis.client().llen(q) for q in queues_for(model)) == 0
            refused = submit(base, ["b"])
            message.ack()  # done: the slot is free again
            taken.close()
        assert refused.status_code == 429, refused.text
        assert "queued or in flight" in refused.json()["message"]
        assert submit(base, ["c"]).status_code == 202
    finally:
        api.stop()


def test_one_tenant_cannot_fill_the_queue_for_the_others(stack):
    model = f"unserved-{uuid.uuid4().hex[:6]}"
    port = free_port()
    api = stack.extra_api(port, RERANKQ_AUTH_ENABLED="true", RERANKQ_MAX_TENANT_PAIRS="5", RERANKQ_MODEL=model,
                          RERANKQ_MAX_QUEUE_DEPTH="1000")
    keys = {}
    for tenant in ("greedy", "modest"):
        done = stack.cli("keys", "create", "--name", tenant, "--scopes", "submit,read",
                         "--tenant", f"{tenant}-{uuid.uuid4().hex[:6]}")
        assert done.returncode == 0, done.stderr
        keys[tenant] = done.stdout.strip().splitlines()[-1]
    base = f"http://127.0.0.1:{port}"
    try:
        assert submit(base, ["a", "b", "c", "d"], keys["greedy"]).status_code == 202
        refused = submit(base, ["e", "f"], keys["greedy"])
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"] == "tenant_quota_exceeded" and "RERANKQ_MAX_TENANT_PAIRS" in body["message"]
        assert "limit 5" in body["message"] and refused.headers["retry-after"]
        assert submit(base, ["e"], keys["greedy"]).status_code == 202  # exactly up to the quota
        assert submit(base, ["a", "b", "c"], keys["modest"]).status_code == 202  # other tenants are not blocked
        with ThreadPoolExecutor(8) as pool:  # concurrent submits cannot overshoot the quota either
            answers = list(pool.map(lambda i: submit(base, [f"x{i}"], keys["modest"]), range(8)))
        assert sorted(a.status_code for a in answers) == [202] * 2 + [429] * 6, [a.text for a in answers]
    finally:
        api.stop()
