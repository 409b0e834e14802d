"""Live workers in one Redis sorted set: hostname -> time of its last heartbeat.

Each worker also keeps its status as JSON under `core.redis_keys.worker_key(hostname)`, with a TTL
of about three beats. Reading the live workers is one ZRANGE and one MGET, O(workers), where a
SCAN over `rerankq:worker:*` walked the whole keyspace (every job's keys included). A member whose
status key has expired is a dead worker: the reader drops it from the set.
"""

from __future__ import annotations

import json
from typing import Any

from core.redis_keys import PREFIX, worker_key

WORKERS_KEY = f"{PREFIX}:workers"


def record_beat(client: Any, hostname: str, status: dict, ttl_ms: int) -> None:
    """Write one heartbeat: the status key (expiring) and the worker's time in the set, together."""
    pipe = client.pipeline(transaction=True)
    pipe.set(worker_key(hostname), json.dumps(status), px=ttl_ms)
    pipe.zadd(WORKERS_KEY, {hostname: status["ts"]})
    pipe.execute()


def forget(client: Any, hostname: str) -> None:
    """A worker stopping cleanly leaves at once instead of after its TTL."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(worker_key(hostname))
    pipe.zrem(WORKERS_KEY, hostname)
    pipe.execute()


def live_workers(client: Any) -> list[dict]:
    """The status of every worker whose heartbeat has not expired (about three missed beats)."""
    hostnames = [h.decode() if isinstance(h, bytes) else h for h in client.zrange(WORKERS_KEY, 0, -1)]
    if not hostnames:
        return []
    workers, dead = [], []
    for hostname, raw in zip(hostnames, client.mget([worker_key(h) for h in hostnames])):
        if not raw:
            dead.append(hostname)
            continue
        try:
            workers.append(json.loads(raw))
        except ValueError:
            continue
    if dead:
        client.zrem(WORKERS_KEY, *dead)
    return workers
