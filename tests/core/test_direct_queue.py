"""The sync endpoint's direct lists (core/direct_queue.py) on a real redis-server: first in, first
out; a taken message is always in exactly one list; a dead consumer's messages go back; every
count that admission and the lost-message sweep use includes them."""

from __future__ import annotations

import pytest

from api.admission import try_admit
from core import direct_queue
from core.queue import INTERACTIVE, messages_in_flight, queue_name, queues_for
from tests.support.stack import RedisProcess

MODEL = "Org/Model"
QUEUE = queue_name(MODEL, INTERACTIVE)


@pytest.fixture()
def client(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server.client()
    server.stop()


def test_messages_round_trip_and_leave_first_in_first_out(client):
    direct_queue.push(client, QUEUE, [("job-a", 0), ("job-b", 2)])
    direct_queue.push(client, QUEUE, [("job-c", 1)])
    processing = direct_queue.register_consumer(client, QUEUE, "worker-1")
    first = direct_queue.take(client, QUEUE, processing, 1)
    assert direct_queue.decode(first)[0] == [("job-a", 0), ("job-b", 2)]
    assert direct_queue.decode(first)[1] is not None  # published_at, for the queue-wait histogram
    second = direct_queue.take(client, QUEUE, processing, 1)
    assert direct_queue.decode(second)[0] == [("job-c", 1)]
    assert direct_queue.take(client, QUEUE, processing, 0.1) is None
    assert client.llen(processing) == 2
    direct_queue.done(client, processing, first)
    assert [direct_queue.decode(m)[0] for m in client.lrange(processing, 0, -1)] == [[("job-c", 1)]]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"chunks": 3}', b'{"nothing": []}'])
def test_a_message_that_is_not_ours_is_refused_by_decode(raw):
    with pytest.raises(ValueError):
        direct_queue.decode(raw)


def test_a_dead_consumers_messages_go_back_and_a_live_ones_stay(client):
    for n in range(3):
        direct_queue.push(client, QUEUE, [(f"job-{n}", 0)])
    dead = direct_queue.register_consumer(client, QUEUE, "dead-worker")
    live = direct_queue.register_consumer(client, QUEUE, "live-worker")
    direct_queue.take(client, QUEUE, dead, 1)
    direct_queue.take(client, QUEUE, dead, 1)
    direct_queue.take(client, QUEUE, live, 1)
    assert direct_queue.in_flight(client, [QUEUE]) == 3
    moved = direct_queue.restore_dead(client, QUEUE, live=["live-worker"], own="me")
    assert moved == 2
    assert client.llen(direct_queue.direct_list(QUEUE)) == 2 and client.llen(dead) == 0 and client.llen(live) == 1
    assert direct_queue.consumers(client, QUEUE) == [live]  # the dead one is forgotten
    assert direct_queue.in_flight(client, [QUEUE]) == 3  # nothing lost on the way
    mine = direct_queue.register_consumer(client, QUEUE, "me")
    restored = {direct_queue.decode(direct_queue.take(client, QUEUE, mine, 1))[0][0][0] for _ in range(2)}
    assert restored == {"job-0", "job-1"}


def test_the_lost_message_sweep_sees_direct_messages_queued_and_held(client):
    queues = queues_for(MODEL)
    assert messages_in_flight(client, queues) == 0
    direct_queue.push(client, QUEUE, [("job-a", 0)])
    assert messages_in_flight(client, queues) == 1
    processing = direct_queue.register_consumer(client, QUEUE, "worker-1")
    direct_queue.take(client, QUEUE, processing, 1)
    assert messages_in_flight(client, queues) == 1, "a message a worker holds is still in flight"
    assert messages_in_flight(client, queues_for("Org/Other")) == 0


def test_admission_counts_direct_messages_queued_and_held(client):
    direct_queue.push(client, QUEUE, [("job-a", 0)])
    processing = direct_queue.register_consumer(client, QUEUE, "worker-1")
    direct_queue.push(client, QUEUE, [("job-b", 0)])
    direct_queue.take(client, QUEUE, processing, 1)
    admitted, depth, reservation = try_admit(client, MODEL, 1, limit=3)
    assert admitted and depth == 2
    admitted, depth, _ = try_admit(client, MODEL, 1, limit=3)
    assert not admitted and depth == 3  # one queued, one held, one reserved
    reservation.release(client)
