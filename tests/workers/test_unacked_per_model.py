"""The lost-message sweep decides per model: another model's unacked messages (a busy deployment
always has some) no longer hide that this model's messages are gone. Real redis-server and kombu."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests.support.stack import RedisProcess
from core.queue import make_celery, messages_in_flight, publish_chunks, queues_for


@pytest.fixture()
def redis_server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


def test_unacked_messages_count_only_for_their_own_model(redis_server):
    app = make_celery(Settings(_env_file=None, redis_url=redis_server.url, model="Org/Busy-Model"))
    busy, idle = queues_for("Org/Busy-Model"), queues_for("Org/Idle-Model")
    publish_chunks(app, "job-busy", [0], busy[1])
    client = redis_server.client()
    with app.connection_for_read() as connection:
        consumer_queue = connection.SimpleQueue(busy[1])
        message = consumer_queue.get(timeout=10)  # delivered, not acked: it sits in kombu's unacked hash
        assert client.hlen("unacked") == 1 and client.llen(busy[1]) == 0
        assert messages_in_flight(client, busy) == 1
        assert messages_in_flight(client, idle) == 0, "another model's unacked message blocked this model's sweep"
        message.ack()
        consumer_queue.close()
    assert messages_in_flight(client, busy) == 0
