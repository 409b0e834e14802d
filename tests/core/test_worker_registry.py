"""Live workers are read from one sorted set in O(workers) Redis commands, however many other keys
Redis holds (the old SCAN over `rerankq:worker:*` walked the whole keyspace). Real redis-server,
and the worker's own Heartbeat writing the beats."""

from __future__ import annotations

import time

import pytest

from api.served_models import live_workers
from core.worker_registry import WORKERS_KEY
from tests.support.stack import RedisProcess
from workers.fallback import live_workers as fallback_view
from workers.heartbeat import Heartbeat


@pytest.fixture()
def redis_client(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    try:
        yield server.client()
    finally:
        server.stop()


def commands_sent(client) -> int:
    return sum(stats["calls"] for name, stats in client.info("commandstats").items() if name != "cmdstat_info")


def test_reading_live_workers_costs_a_few_commands_whatever_the_keyspace(redis_client):
    pipe = redis_client.pipeline(transaction=False)
    for i in range(20_000):  # jobs' keys, cache entries, queues: everything else in Redis
        pipe.set(f"rerankq:cancelled:job-{i}", "1")
    pipe.execute()
    beats = [Heartbeat(redis_client, f"w{i}", 60, lambda i=i: {"hostname": f"w{i}", "model": "m", "ready": True,
                                                                  "fallback": i == 2})
             for i in range(3)]
    for beat in beats:
        beat.beat()
    redis_client.config_resetstat()
    workers = live_workers(redis_client)
    assert commands_sent(redis_client) <= 3
    assert sorted(w["hostname"] for w in workers) == ["w0", "w1", "w2"]
    assert fallback_view(redis_client, "m") == (True, True)
    assert redis_client.info("commandstats").get("cmdstat_scan") is None


def test_a_worker_whose_heartbeat_expired_leaves_the_set(redis_client):
    gone = Heartbeat(redis_client, "gone", 0.1, lambda: {"hostname": "gone", "model": "m", "ready": True})
    stays = Heartbeat(redis_client, "stays", 60, lambda: {"hostname": "stays", "model": "m", "ready": True})
    gone.beat()  # TTL 1 s (the floor), never renewed: the worker died
    stays.start()
    time.sleep(1.3)
    assert [w["hostname"] for w in live_workers(redis_client)] == ["stays"]
    assert redis_client.zrange(WORKERS_KEY, 0, -1) == [b"stays"]
    stays.stop()  # a clean stop leaves at once
    assert live_workers(redis_client) == [] and redis_client.zcard(WORKERS_KEY) == 0
