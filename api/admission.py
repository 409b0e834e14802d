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
from typing import Any, Sequence

from core.direct_queue import consumers_key, direct_list
from core.queue import model_key, queues_for
from core.redis_keys import admission_key

RESERVATION_TTL_S = 60.0

# KEYS: the model's queue lists (with kombu's priority lists and the direct lists), the direct lists'
# consumer sets, kombu's unacked hash, the reservations sorted set. ARGV: limit, member, now, ttl, the
# number of lists, then the model's queue names. An unacked entry is `[payload, exchange, routing_key]`:
# only its tail is read, for the routing key (as core/unacked.py). A consumer set names the processing
# lists of the workers taking from a direct list (core/direct_queue.py); they are read from it, so
# they are not declared in KEYS (one Redis, never a cluster, serves the queues).
_ADMIT = """
local n = #KEYS
local unacked, reservations = KEYS[n - 1], KEYS[n]
local limit, member, now, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lists = tonumber(ARGV[5])
local wanted = {}
for i = 6, #ARGV do wanted[ARGV[i]] = true end
local depth = 0
for i = 1, lists do depth = depth + redis.call('LLEN', KEYS[i]) end
for i = lists + 1, n - 2 do
  for _, processing in ipairs(redis.call('SMEMBERS', KEYS[i])) do depth = depth + redis.call('LLEN', processing) end
end
for _, entry in ipairs(redis.call('HVALS', unacked)) do
  local routing_key = string.match(string.sub(entry, -400), ',%s*"([^",]*)"%s*%]%s*$')
  if routing_key == nil or wanted[routing_key] then depth = depth + 1 end
end
redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now - ttl)
for _, reserved in ipairs(redis.call('ZRANGE', reservations, 0, -1)) do
  depth = depth + tonumber(string.match(reserved, ':(%d+)$'))
end
if depth >= limit then return {0, depth} end
redis.call('ZADD', reservations, now, member)
redis.call('EXPIRE', reservations, math.ceil(ttl))
return {1, depth}
"""


@dataclass(frozen=True)
class Reservation:
    key: str
    member: str

    def release(self, client: Any) -> None:
        client.zrem(self.key, self.member)


def release_all(client: Any, reservations: Sequence[Reservation]) -> None:
    """Release several reservations in one round trip (the jobs one group commit published)."""
    pipe = client.pipeline(transaction=False)
    for reservation in reservations:
        pipe.zrem(reservation.key, reservation.member)
    pipe.execute()


def reservations_key(model: str) -> str:
    return admission_key(model_key(model))


def queue_keys(model: str) -> list[str]:
    from kombu.transport.redis import Channel

    return [*(f"{q}{Channel.sep}{step}" if step else q for q in queues_for(model) for step in Channel.priority_steps),
            *(direct_list(q) for q in queues_for(model))]


def try_admit(client: Any, model: str, messages: int, limit: int) -> tuple[bool, int, Reservation]:
    """(admitted, depth seen, reservation to release once published), in one round trip."""
    from kombu.transport.redis import Channel

    reservation = Reservation(reservations_key(model), f"{uuid.uuid4().hex}:{max(int(messages), 1)}")
    script = client.register_script(_ADMIT)  # EVALSHA: the script text is sent once per connection pool
    lists = queue_keys(model)
    admitted, depth = script(keys=[*lists, *(consumers_key(q) for q in queues_for(model)), Channel.unacked_key,
                                   reservation.key],
                             args=[limit, reservation.member, time.time(), RESERVATION_TTL_S, len(lists),
                                   *queues_for(model)])
    return bool(admitted), int(depth), reservation
