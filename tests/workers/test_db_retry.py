"""The worker's database retry: outages within the budget are waited out, others propagate."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from workers.db_retry import with_db_retry


def outage(times: int):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return "stored"

    return action, calls


def test_a_short_outage_is_waited_out():
    action, calls = outage(2)
    assert with_db_retry(action, budget_s=10) == "stored" and len(calls) == 3


def test_past_the_budget_the_database_error_propagates():
    action, calls = outage(1000)
    with pytest.raises(OperationalError):
        with_db_retry(action, budget_s=0.5)
    assert 2 <= len(calls) <= 4  # 0.2 s, then 0.4 s: the budget ends the waits


def test_other_errors_are_not_retried():
    calls = []

    def action():
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        with_db_retry(action, budget_s=10)
    assert calls == [1]
