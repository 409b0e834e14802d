"""Waiting for a job to finish, for every route that answers only once it has (POST /v1/rerank,
GET /v1/jobs/{id}?wait=, the playground): woken by the worker's done notice (api.job_waiters, one
listener per API process), with a cheap status check, never a poll loop per request."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

from fastapi.concurrency import run_in_threadpool

from api.job_waiters import Expected
from api.state import AppState
from rerankq.schemas import JobStatus
from store.db import session_scope
from store.jobs import get_job


async def wait_until_done(state: AppState, job_id: str, timeout_s: float) -> bool:
    """True once the job has finished; False when `timeout_s` passed first."""
    return (await wait_for_notice(state, job_id, timeout_s))[0]


async def wait_for_notice(state: AppState, job_id: str, timeout_s: float) -> tuple[bool, Optional[str]]:
    """As `wait_until_done`, with the notice's payload of committed scores (core/done_payload.py),
    None when the notice had none or the store said the job finished."""
    assert state.waiters is not None, "the app's lifespan starts the job waiters"
    return await state.waiters.wait_for_notice(job_id, timeout_s,
                                               lambda: run_in_threadpool(job_finished, state, job_id))


@contextmanager
def expecting(state: AppState, job_id: str) -> Iterator[Expected]:
    """Listen for a job: registered before it is published (POST /v1/rerank), it needs no store
    check; registered before its status is read (GET /v1/jobs/{id}?wait=), that one read is the
    check. While the listener is down the waiter still wakes, from the store recheck that runs
    every half second then."""
    assert state.waiters is not None, "the app's lifespan starts the job waiters"
    with state.waiters.expecting(job_id) as expected:
        yield expected


def job_finished(state: AppState, job_id: str) -> bool:
    """Only the status: cheap enough to check while the job's pairs are on the model."""
    with session_scope(state.settings.database_url) as session:
        job = get_job(session, job_id)
        return job is not None and JobStatus(job.status).finished
