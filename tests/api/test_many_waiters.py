"""1,000 requests waiting on one API process (real redis-server, worker and API processes).

Each waiting request used to hold a Redis connection in BLPOP and, past the pool, poll the store
every 0.2 s. Now one listener per process wakes them: while they wait, the API holds a bounded
number of Redis connections and sends a bounded number of store queries, and every one of them
answers once its job finishes, whether a worker's notice says so or only the store does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from store.db import session_scope
from store.jobs import cancel_job
from tests.support.stack import make_stack

WAITERS = 1000
JOBS = 100
MEASURE_S = 3.0


@pytest.fixture(scope="module")
def paused_stack(tmp_path_factory, tiny_qwen3):
    """A stack whose one worker is stopped (SIGSTOP) after warm-up, so jobs stay queued until we say."""
    stack = make_stack(tmp_path_factory.mktemp("waiters"), tiny_qwen3, RERANKQ_WAIT_RECHECK_S="1")
    worker = None
    try:
        worker = stack.start_worker("paused")
        stack.start_api()
        os.killpg(worker.pid, signal.SIGSTOP)
        yield stack, worker
    finally:
        if worker is not None and worker.alive():
            os.killpg(worker.pid, signal.SIGCONT)
        stack.stop()


def api_metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported by the API")


async def hold_waiters(stack, worker, job_ids: list[str]) -> dict:
    limits = httpx.Limits(max_connections=WAITERS + 20, max_keepalive_connections=WAITERS + 20)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as client:
        async def metrics() -> str:
            # A fresh connection per scrape: a kept-alive one may have been closed by the server's
            # keep-alive timeout while the waiters held the test's attention.
            async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as scraper:
                response = await scraper.get("/metrics")
            assert response.status_code == 200
            return response.text

        redis_client = stack.redis.client()
        clients_before = len(redis_client.client_list())
        waiting = [asyncio.create_task(client.get(f"/v1/jobs/{job_ids[i % JOBS]}", params={"wait": 60}))
                   for i in range(WAITERS)]
        deadline = time.monotonic() + 50
        while api_metric(await metrics(), "rerankq_api_waiting_requests") < WAITERS:
            assert time.monotonic() < deadline, "the 1,000 requests never all waited"
            assert not any(task.done() for task in waiting), "a request answered before its job finished"
            await asyncio.sleep(0.2)
        queries_before = api_metric(await metrics(), "rerankq_api_database_queries_total")
        peak_clients = len(redis_client.client_list())
        await asyncio.sleep(MEASURE_S)
        peak_clients = max(peak_clients, len(redis_client.client_list()))
        queries_after = api_metric(await metrics(), "rerankq_api_database_queries_total")
        assert not any(task.done() for task in waiting)

        # Half the jobs end in the store only (no notice: the periodic check must find them),
        # the other half are scored by the worker, which announces them.
        with session_scope(stack.database_url) as session:
            for job_id in job_ids[: JOBS // 2]:
                assert cancel_job(session, job_id)
        resumed = time.monotonic()
        os.killpg(worker.pid, signal.SIGCONT)
        answers = await asyncio.gather(*waiting)
        return dict(clients_before=clients_before, peak_clients=peak_clients,
                    queries=queries_after - queries_before, answered_s=time.monotonic() - resumed,
                    answers=answers, waiting_after=api_metric(await metrics(), "rerankq_api_waiting_requests"))


def test_a_thousand_waiters_cost_bounded_redis_connections_and_store_queries(paused_stack):
    stack, worker = paused_stack
    with stack.client() as client:
        job_ids = []
        for i in range(JOBS):
            response = client.post("/v1/jobs", json={"requests": [{"query": f"query {i}", "documents": [f"doc {i}"]}]})
            assert response.status_code == 202, response.text
            job_ids.append(response.json()["id"])

    seen = asyncio.run(hold_waiters(stack, worker, job_ids))
    print(f"{WAITERS} waiters: Redis clients {seen['clients_before']} -> {seen['peak_clients']}, "
          f"{seen['queries']:.0f} store queries in {MEASURE_S} s, all answered {seen['answered_s']:.1f} s "
          "after the jobs could finish")

    # One listener connection (plus the few the process already had), not one per waiting request.
    assert seen["peak_clients"] - seen["clients_before"] <= 3, seen
    # 1,000 requests waited 3 s: a store check per second for all of them plus the two scrapes'
    # own COUNTs, where polling per request made thousands.
    assert seen["queries"] <= 30, seen
    statuses = [answer.json()["status"] for answer in seen["answers"]]
    assert all(answer.status_code == 200 for answer in seen["answers"])
    assert statuses.count("cancelled") == WAITERS // 2 and statuses.count("succeeded") == WAITERS // 2, statuses
    assert seen["answered_s"] < 55, seen  # all woke as their jobs finished, well before their 60 s wait
    assert seen["waiting_after"] == 0
