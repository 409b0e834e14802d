"""Retry a store operation while the database is unreachable, within a time budget.

A worker that meets a database outage mid-chunk keeps its claim and waits here, so a short
PostgreSQL restart costs a pause, not a failed attempt; past the budget the error propagates
and the chunk is re-published (workers/tasks.py)."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from sqlalchemy.exc import OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)
T = TypeVar("T")
DB_RETRY_S = 60.0


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning("database unavailable (%s); retrying in %.1fs", getattr(error, "orig", error), delay)


def with_db_retry(action: Callable[[], T], budget_s: float = DB_RETRY_S) -> T:
    """`action()`, retried on OperationalError with backoff 0.2 s doubling to 5 s, for up to `budget_s`."""
    retrying = Retrying(retry=retry_if_exception_type(OperationalError), stop=stop_after_delay(budget_s),
                        wait=wait_exponential(multiplier=0.2, min=0.2, max=5.0), before_sleep=_log_retry, reraise=True)
    return retrying(action)
