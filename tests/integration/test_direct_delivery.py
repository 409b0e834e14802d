"""The sync endpoint's messages ride a plain Redis list that workers take from themselves
(core/direct_queue.py, workers/direct_consumer.py), not Celery. Faults injected into real
processes (redis-server, workers, API, SQLite): a worker killed while it holds sync messages loses
nothing and scores nothing twice; a worker asked to stop finishes what it holds; with
RERANKQ_SYNC_DIRECT=false the same requests ride Celery."""

from __future__ import annotations

import signal
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import pytest

from core import direct_queue
from core.queue import INTERACTIVE, queue_name
from tests.integration.test_faults import (FAST_REDELIVERY, assert_exactly_once, broker_drained, claimed_unfinished,
                                           max_attempts)
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job, mark_all_published
from tests.support.stack import make_stack, wait_job, wait_until

pytestmark = pytest.mark.slow

SLOW = dict(RERANKQ_FAULT_STEP_DELAY_S="0.4", RERANKQ_MAX_BATCH_PAIRS="4")


@pytest.fixture()
def direct_stack(tmp_path, tiny_qwen3):
    stack = make_stack(tmp_path / "stack", tiny_qwen3, **FAST_REDELIVERY)
    yield stack
    stack.stop()


def interactive_queue(stack) -> str:
    return queue_name(str(stack.model_dir), INTERACTIVE)


def held_by(stack, worker: str) -> int:
    return stack.redis.client().llen(direct_queue.processing_list(interactive_queue(stack), worker))


def sync_bodies(n: int, tag: str) -> list[dict]:
    return [{"query": f"sync query {tag}{j}", "documents": [f"document {tag}{j}-{d}" for d in range(8)]}
            for j in range(n)]


@contextmanager
def requests_in_flight(stack, bodies: list[dict]) -> Iterator[list[Future]]:
    """POST /v1/rerank for every body at once, from threads: the futures of the responses."""
    client = stack.client(timeout=120)
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        try:
            yield [pool.submit(client.post, "/v1/rerank", json=body) for body in bodies]
        finally:
            pool.shutdown(wait=True)
            client.close()


def answered(futures) -> list[dict]:
    responses = [f.result(timeout=120) for f in futures]
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses]
    return [r.json() for r in responses]


def as_payloads(bodies: list[dict]) -> list[dict]:
    return [{"requests": [body]} for body in bodies]


def test_a_killed_worker_s_sync_messages_go_to_another_worker_and_are_scored_once(direct_stack, tiny_qwen3):
    stack = direct_stack
    stack.start_worker("victim", **SLOW)
    stack.start_api(RERANKQ_SYNC_TIMEOUT_S="120")
    bodies = sync_bodies(6, "k")
    with requests_in_flight(stack, bodies) as futures:
        wait_until(lambda: held_by(stack, "victim") >= 1 and claimed_unfinished(stack) >= 1, 30,
                   "sync messages held by the victim, a chunk claimed and not finished")
        assert stack.redis.client().hlen("unacked") == 0, "sync messages went through Celery"
        held = held_by(stack, "victim")
        stack.workers[0].kill(signal.SIGKILL)
        killed_at = time.monotonic()
        stack.start_worker("rescuer")
        results = answered(futures)
    recovery_s = time.monotonic() - killed_at
    print(f"\nSIGKILL: the victim held {held} sync messages; every request answered {recovery_s:.1f}s after the kill "
          f"(heartbeat 0.5s x 3, sweep 1s, plus the rescuer's start); max attempts per chunk {max_attempts(stack)}")
    assert_exactly_once(stack, [r["id"] for r in results], as_payloads(bodies), tiny_qwen3)
    assert max_attempts(stack) >= 2, "no chunk was delivered again: the kill did not hit work in flight"
    assert held_by(stack, "victim") == 0
    wait_until(lambda: broker_drained(stack), 20, "empty queues, no unacked messages, no held sync messages")
    assert direct_queue.consumers(stack.redis.client(), interactive_queue(stack)) == [
        direct_queue.processing_list(interactive_queue(stack), "rescuer")], "the dead consumer is forgotten"


def test_a_worker_asked_to_stop_finishes_the_sync_messages_it_holds(direct_stack, tiny_qwen3):
    stack = direct_stack
    worker = stack.start_worker("leaving", RERANKQ_CHUNK_DEADLINE_S="20", RERANKQ_VISIBILITY_TIMEOUT_S="60",
                                **SLOW)  # no deadline retries in this test
    stack.start_api(RERANKQ_SYNC_TIMEOUT_S="120")
    bodies = sync_bodies(4, "t")
    with requests_in_flight(stack, bodies) as futures:
        wait_until(lambda: held_by(stack, "leaving") >= 1, 30, "sync messages held by the worker")
        worker.kill(signal.SIGTERM)
        worker.process.wait(timeout=60)
        stack.start_worker("next")  # for any message still queued when the first stopped taking
        results = answered(futures)
    assert worker.process.returncode == 0, worker.log()[-3000:]
    assert held_by(stack, "leaving") == 0
    assert direct_queue.processing_list(interactive_queue(stack), "leaving") not in \
        direct_queue.consumers(stack.redis.client(), interactive_queue(stack))
    assert_exactly_once(stack, [r["id"] for r in results], as_payloads(bodies), tiny_qwen3)
    assert max_attempts(stack) == 1, "a message the stopping worker held was run again"


def test_with_sync_direct_off_sync_requests_ride_celery(direct_stack, tiny_qwen3):
    stack = direct_stack
    stack.start_worker("celery-only", **SLOW)
    stack.start_api(RERANKQ_SYNC_DIRECT="false", RERANKQ_SYNC_TIMEOUT_S="120")
    bodies = sync_bodies(3, "c")
    with requests_in_flight(stack, bodies) as futures:
        wait_until(lambda: stack.redis.client().hlen("unacked") >= 1, 30, "a sync message delivered by Celery")
        assert held_by(stack, "celery-only") == 0
        results = answered(futures)
    assert_exactly_once(stack, [r["id"] for r in results], as_payloads(bodies), tiny_qwen3)


def test_a_worker_restarted_under_its_old_name_hands_back_what_its_earlier_life_held(direct_stack, tiny_qwen3):
    stack = direct_stack
    queue = interactive_queue(stack)
    body = sync_bodies(1, "r")[0]
    job_id = str(uuid.uuid4())
    with session_scope(stack.database_url) as session:
        create_job(session, job_id=job_id, requests=[RerankRequest(**body)], model=str(stack.model_dir), queue=queue,
                   chunk_pairs=8, kind="sync")
        mark_all_published(session, [job_id])  # so that no sweeper publishes it through Celery
    client = stack.redis.client()
    direct_queue.push(client, queue, [(job_id, 0)])
    earlier = direct_queue.register_consumer(client, queue, "same-name")
    assert direct_queue.take(client, queue, earlier, 1) is not None  # held by the earlier life, which then died
    worker = stack.start_worker("same-name")
    stack.start_api()
    with stack.client() as http:
        assert wait_job(http, job_id)["status"] == "succeeded"
    assert client.llen(earlier) == 0
    assert "handed back 1 messages held by an earlier worker named same-name" in worker.log()
    assert_exactly_once(stack, [job_id], as_payloads([body]), tiny_qwen3)


def test_an_unreadable_direct_message_is_dropped_not_held_forever(stack):
    queue = interactive_queue(stack)
    client = stack.redis.client()
    client.lpush(direct_queue.direct_list(queue), b"not a message of ours")
    worker = stack.workers[0]
    held = direct_queue.processing_list(queue, "shared")
    wait_until(lambda: "dropping an unreadable message" in worker.log(), 30, "the worker to drop the message")
    wait_until(lambda: client.llen(held) == 0 and client.llen(direct_queue.direct_list(queue)) == 0, 10,
               "the message gone from both lists")
    with stack.client() as http:  # and the worker still serves
        response = http.post("/v1/rerank", json={"query": "still there?", "documents": ["yes", "no"]})
    assert response.status_code == 200, response.text
