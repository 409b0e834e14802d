"""A waiter registered before its job is published (POST /v1/rerank) wakes on the notice with its
payload, times out cleanly, and leaves nothing behind."""

from __future__ import annotations

import asyncio

from api.job_waiters import JobWaiters


def waiters() -> JobWaiters:
    return JobWaiters("redis://127.0.0.1:1/0", "sqlite://", recheck_s=1.0)  # never started: no I/O


def test_a_notice_that_comes_before_the_wait_still_wakes_it():
    async def scenario():
        registry = waiters()
        with registry.expecting("job-1") as expected:
            registry.wake("job-1", "payload")  # the worker was faster than the request's await
            assert await expected.wait(5) == (True, "payload")
        return registry.count

    assert asyncio.run(scenario()) == 0


def test_a_notice_for_another_job_does_not_wake_it():
    async def scenario():
        registry = waiters()
        with registry.expecting("job-1") as expected:
            registry.wake("job-2", "other")
            return await expected.wait(0.05), registry.count

    assert asyncio.run(scenario()) == ((False, None), 1)
