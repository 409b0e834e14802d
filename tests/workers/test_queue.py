"""Publishing against a real redis-server: one message per chunk, in the lane it was sent to."""

from __future__ import annotations

import pytest

from core.settings import Settings
from tests.support.stack import RedisProcess
from core.queue import make_celery, model_key, publish_chunks, queue_name, queues_for


@pytest.fixture()
def redis_server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop()


def test_each_lane_gets_exactly_its_own_messages(redis_server):
    app = make_celery(Settings(redis_url=redis_server.url, model="Org/Model-1.5B"))
    interactive, bulk = queues_for("Org/Model-1.5B")
    publish_chunks(app, "job-a", [0], interactive)
    publish_chunks(app, "job-b", [0, 1, 2], bulk)
    client = redis_server.client()
    assert client.llen(interactive) == 1
    assert client.llen(bulk) == 3


def test_queue_names_are_safe_and_per_model():
    assert model_key("Qwen/Qwen3-Reranker-0.6B") == "qwen-qwen3-reranker-0.6b"
    assert queue_name("/models/My Model", "bulk") == "rerankq.models-my-model.bulk"
    assert queues_for("a") == ["rerankq.a.interactive", "rerankq.a.bulk"]
