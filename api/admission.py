"""Admission control without overshoot: a model's queue depth counts queued and in-flight messages
plus the submits admitted and not yet published, and each admission is decided atomically.

Checking the depth and publishing later let every concurrent submit pass the same check. Now one
Redis script reads the model's queue lengths and the outstanding reservations and, if there is
room, reserves the new job's messages, all at once. A reservation ends when the job is published
(or refused); one left by a crashed API process expires after RESERVATION_TTL_S. In-flight
messages (delivered to a worker, not yet acked) are work too, so they count against the limit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from workers.queue import model_key, queues_for
from workers.unacked import unacked_for_queues

RESERVATION_TTL_S = 60.0

# KEYS: the model's queue lists (with kombu's priority lists), then the reservations sorted set.
# ARGV: in-flight count, limit, messages to reserve, member, now, ttl.
_ADMIT = """
local reservations = KEYS[#KEYS]
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now - ttl)
local depth = tonumber(ARGV[1])
for i = 1, #KEYS - 1 do depth = depth + redis.call('LLEN', KEYS[i]) end
for _, member in ipairs(redis.call('ZRANGE', reservations, 0, -1)) do
  depth = depth + tonumber(string.match(member, ':(%d+)$'))
end
if depth >= tonumber(ARGV[2]) then return {0, depth} end
redis.call('ZADD', reservations, now, ARGV[4])
redis.call('EXPIRE', reservations, math.ceil(ttl))
return {1, depth}
"""


@dataclass(frozen=True)
class Reservation:
    key: str
    member: str

    def release(self, client: Any) -> None:
        client.zrem(self.key, self.member)


def reservations_key(model: str) -> str:
    return f"rerankq:admission:{model_key(model)}"


def queue_keys(model: str) -> list[str]:
    from kombu.transport.redis import Channel

    return [f"{q}{Channel.sep}{step}" if step else q for q in queues_for(model) for step in Channel.priority_steps]


def try_admit(client: Any, model: str, messages: int, limit: int) -> tuple[bool, int, Reservation]:
    """(admitted, depth seen, reservation to release once published)."""
    in_flight = unacked_for_queues(client, queues_for(model))
    reservation = Reservation(reservations_key(model), f"{uuid.uuid4().hex}:{max(int(messages), 1)}")
    admitted, depth = client.eval(_ADMIT, len(queue_keys(model)) + 1, *queue_keys(model), reservation.key,
                                  in_flight, limit, messages, reservation.member, time.time(), RESERVATION_TTL_S)
    return bool(admitted), int(depth), reservation
