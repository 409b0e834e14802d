"""Shared fixtures: tiny models built locally, and a real stack (redis-server, worker, API).
The helpers behind them (make_stack, secured_api) live in tests/support/stack.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from commands.pg_cluster import PostgresCluster, missing_reason
from tests.support.stack import Stack, make_stack
from tests.support.tiny_models import build_tiny_cross_encoder, build_tiny_qwen3


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_qwen3(models_dir) -> Path:
    return Path(build_tiny_qwen3(models_dir / "tiny-qwen3"))


@pytest.fixture(scope="session")
def tiny_cross_encoder(models_dir) -> Path:
    return Path(build_tiny_cross_encoder(models_dir / "tiny-cross-encoder"))


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL server, or a skip that names what is missing."""
    reason = missing_reason()
    if reason:
        pytest.skip(f"PostgreSQL tests need: {reason}")
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory, tiny_qwen3) -> Stack:
    """One shared service: redis-server, one worker on the tiny Qwen3, the API."""
    stack = make_stack(tmp_path_factory.mktemp("stack"), tiny_qwen3, RERANKQ_SYNC_TIMEOUT_S="60")
    try:
        stack.start_worker("shared")
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@pytest.fixture()
def client(stack):
    with stack.client() as client:
        yield client


# Fixtures that start real processes (Redis, workers, APIs, PostgreSQL) or build and load a model:
# a test that uses any of them, even indirectly, is `slow`, so `pytest -m "not slow"` is the
# in-process tier that answers in seconds.
SLOW_FIXTURES = {"models_dir", "stack", "postgres_cluster"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    """With RERANKQ_TESTS_REQUIRE_ALL=1 (CI sets it) a skipped test fails the run: CI installs
    everything, so a skip there means a part of the suite silently stopped running."""
    if not os.environ.get("RERANKQ_TESTS_REQUIRE_ALL") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reasons = sorted({str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
                          for report in skipped})
        reporter.write_line(f"RERANKQ_TESTS_REQUIRE_ALL: {len(skipped)} tests skipped: " + "; ".join(reasons), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
