"""One listener per API process wakes every local request waiting for a job to finish.

POST /v1/rerank, GET /v1/jobs/{id}?wait= and the playground wait for a job. Each used to hold a
Redis connection in BLPOP and, past the pool size, to poll the store five times a second. Now a
single task holds one Redis pub/sub connection on the channel workers announce finished jobs on
(`core.redis_keys.JOBS_DONE_CHANNEL`) and sets the local waiters' events. Nothing is lost when a
notice is (Redis restarting, the listener reconnecting): every `recheck_s` (every 0.5 s while the
listener is down) one store query asks which of all waiting jobs have finished.

A notice may carry the finishing worker's committed scores (core/done_payload.py): they are kept
for the job's local waiters (`wait_for_notice`), so POST /v1/rerank answers without reading the
job back from the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterable, Iterator, Optional

import redis
import redis.asyncio as aioredis
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from core.done_payload import parse_notice
from core.redis_keys import JOBS_DONE_CHANNEL
from rerankq.schemas import JobStatus
from store.db import session_scope
from store.tables import Job

log = logging.getLogger(__name__)

FINISHED = [s.value for s in JobStatus if s.finished]
IDS_PER_QUERY = 500  # keeps each IN list well under every database's parameter limit
RECONNECT_RECHECK_S = 0.5


def finished_jobs(database_url: str, job_ids: Iterable[str]) -> set[str]:
    """Which of `job_ids` have finished: one query per 500 ids, however many requests wait on them."""
    ids = list(job_ids)
    found: set[str] = set()
    with session_scope(database_url) as session:
        for start in range(0, len(ids), IDS_PER_QUERY):
            found.update(session.scalars(select(Job.id).where(Job.id.in_(ids[start:start + IDS_PER_QUERY]),
                                                              Job.status.in_(FINISHED))))
    return found


class Expected:
    """One registered waiter (JobWaiters.expecting)."""

    def __init__(self, waiters: "JobWaiters", job_id: str, event: asyncio.Event) -> None:
        self._waiters, self._job_id, self._event = waiters, job_id, event

    async def wait(self, timeout_s: float) -> tuple[bool, Optional[str]]:
        """(True once woken, False after `timeout_s`; the notice's payload, None when it had none)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            return False, None
        return True, self._waiters._payloads.get(self._job_id)


class JobWaiters:
    """The per-process registry of waiting requests and the one task that wakes them."""

    def __init__(self, redis_url: str, database_url: str, recheck_s: float) -> None:
        self._redis_url = redis_url
        self._database_url = database_url
        self._recheck_s = recheck_s
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._payloads: dict[str, str] = {}  # a notice's payload, while the job has local waiters
        self._task: Optional[asyncio.Task] = None
        self.listening = False  # subscribed now: notices arrive without polling

    @property
    def count(self) -> int:
        """Requests waiting in this process now (the rerankq_api_waiting_requests gauge)."""
        return sum(len(events) for events in self._waiting.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rerankq-job-waiters")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def wait_for_notice(self, job_id: str, timeout_s: float,
                              finished: Callable[[], Awaitable[bool]]) -> tuple[bool, Optional[str]]:
        """(True once the job has finished, False after `timeout_s`; the payload of the notice that woke
        the request, None when there was none: a bare notice, a store check, a timeout). `finished` (a
        store check) runs after the request is registered, so a notice sent between the two is never missed."""
        with self.expecting(job_id) as expected:
            if await finished():
                return True, self._payloads.get(job_id)
            return await expected.wait(timeout_s)

    @contextmanager
    def expecting(self, job_id: str) -> Iterator["Expected"]:
        """Register a waiter for `job_id` now. For a job registered before it was published no notice
        can come too early, so `Expected.wait` needs no store check (POST /v1/rerank)."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield Expected(self, job_id, event)
        finally:
            events = self._waiting.get(job_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[job_id]
                    self._payloads.pop(job_id, None)

    def wake(self, job_id: str, payload: Optional[str] = None) -> None:
        events = self._waiting.get(job_id)
        if not events:
            return
        if payload is not None:
            self._payloads.setdefault(job_id, payload)
        for event in events:
            event.set()

    async def recheck(self) -> None:
        """Wake the waiters of every job the store says has finished (one query per 500 jobs)."""
        if not self._waiting:
            return
        for job_id in await run_in_threadpool(finished_jobs, self._database_url, list(self._waiting)):
            self.wake(job_id)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as error:
                log.warning("job-done listener lost Redis (%s); checking the store every %.1fs until it is back",
                            error, RECONNECT_RECHECK_S)
            except Exception as error:  # noqa: BLE001 - the listener must outlive one bad message or query
                log.warning("job-done listener failed: %s", error)
            self.listening = False
            await self._safe_recheck()
            await asyncio.sleep(RECONNECT_RECHECK_S)

    async def _listen(self) -> None:
        client = aioredis.Redis.from_url(self._redis_url, socket_connect_timeout=5, health_check_interval=30)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(JOBS_DONE_CHANNEL)
            self.listening = True
            await self._safe_recheck()  # notices sent while we were not subscribed
            next_recheck = time.monotonic() + self._recheck_s
            while True:
                message = await pubsub.get_message(timeout=max(0.01, next_recheck - time.monotonic()))
                if message is not None and message.get("type") == "message":
                    self.wake(*parse_notice(message["data"]))
                if time.monotonic() >= next_recheck:
                    await self._safe_recheck()
                    next_recheck = time.monotonic() + self._recheck_s
        finally:
            self.listening = False
            await pubsub.aclose()
            await client.aclose()

    async def _safe_recheck(self) -> None:
        try:
            await self.recheck()
        except Exception as error:  # noqa: BLE001 - a store outage must not end the listener
            log.warning("checking waiting jobs in the store failed: %s", error)
