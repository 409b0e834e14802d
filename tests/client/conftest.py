"""API processes with special settings on the shared stack (same Redis, store and worker)."""

from __future__ import annotations

import pytest

from commands.redis_server import free_port
from core.queue import queues_for
from tests.support.stack import secured_api as start_secured_api

PARKED_MODEL = "parked-model"


class ParkedApi:
    """An API whose default model no worker serves, with a queue limit of one message: a message
    put in its queue by hand makes every submit answer 429, and accepted jobs never run."""

    def __init__(self, stack, port: int) -> None:
        self.stack = stack
        self.url = f"http://127.0.0.1:{port}"
        self.queue = queues_for(PARKED_MODEL)[1]

    def block(self) -> None:
        self.stack.redis.client().lpush(self.queue, "placeholder")

    def unblock(self) -> None:
        self.stack.redis.client().delete(*queues_for(PARKED_MODEL))


@pytest.fixture(scope="session")
def parked_api(stack):
    port = free_port()
    api = stack.extra_api(port, RERANKQ_MODEL_NAME=PARKED_MODEL, RERANKQ_MAX_QUEUE_DEPTH="1")
    parked = ParkedApi(stack, port)
    yield parked
    parked.unblock()
    api.stop()


@pytest.fixture(scope="session")
def secured_api(stack):
    """(url, {name: key}) of an API with access control on."""
    with start_secured_api(stack, [("sdk-user", "submit,read", "sdk-tests"), ("sdk-reader", "read", "sdk-tests")]) as api:
        yield api
