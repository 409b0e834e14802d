"""A worker whose Celery consumer ends on its own exits non-zero, so a restart policy starts it again."""

from __future__ import annotations

from workers.main import EXIT_CONSUMER_DIED, exit_code_after_consumer


def test_consumer_that_stopped_without_a_signal_exits_non_zero():
    # Celery returns 0 after an 'Unrecoverable error' (seen on broker restarts in the chaos soak).
    assert exit_code_after_consumer(0, shutdown_requested=False) == EXIT_CONSUMER_DIED
    assert exit_code_after_consumer(None, shutdown_requested=False) == EXIT_CONSUMER_DIED


def test_requested_shutdown_keeps_celerys_code():
    assert exit_code_after_consumer(0, shutdown_requested=True) == 0
    assert exit_code_after_consumer(None, shutdown_requested=True) == 0
    assert exit_code_after_consumer(1, shutdown_requested=True) == 1
    assert exit_code_after_consumer("failed", shutdown_requested=True) == 1
