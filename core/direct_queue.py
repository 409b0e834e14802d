"""The synchronous endpoint's messages on a plain Redis list, taken by the workers' own consumer.

Under sync traffic Celery's machinery per message (kombu's consume, dispatch and ack) was about
half of a worker's Python time, more than the model's. A sync job's message needs none of it: no
countdown, no routing, no result. So the API pushes it onto a list of its own (`direct_list`), and
each worker takes it with one BLMOVE onto a processing list named after itself
(`processing_list`), runs it, and removes it with one LREM.

Delivery is as reliable as Celery's, and faster to recover. BLMOVE is atomic, so a message is
always in exactly one list: queued, or held by one worker. A worker that dies leaves its messages
in its processing list. Every worker's sweeper moves the messages of a consumer whose heartbeat
has expired back to the queue (`restore`), a few heartbeats after the crash, where Celery waits
out its visibility timeout. A second delivery is harmless: the store's keys make a chunk already
saved a no-op. Messages lost with Redis itself are re-published from the store by the lost-message
sweeper, which counts these lists (`in_flight`).

A message is JSON: {"chunks": [[job_id, chunk_idx], ...], "published_at": epoch seconds}.
Needs Redis 6.2 or later (BLMOVE).
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Optional, Sequence

from core.redis_keys import PREFIX

Chunks = list[tuple[str, int]]


def direct_list(queue: str) -> str:
    """The list the API pushes onto (left) and workers take from (right): first in, first out."""
    return f"{queue}.direct"


def processing_list(queue: str, consumer: str) -> str:
    """The messages one worker has taken from `queue` and not finished."""
    return f"{queue}.direct.processing.{consumer}"


def consumers_key(queue: str) -> str:
    """The set of the processing lists of every consumer that has taken from `queue` (named apart
    from the queue's lists, so that a scan for `rerankq.*` finds only lists)."""
    return f"{PREFIX}:direct-consumers:{queue}"


def encode(chunks: Sequence[tuple[str, int]], published_at: Optional[float] = None) -> str:
    return json.dumps({"chunks": [[job_id, int(chunk_idx)] for job_id, chunk_idx in chunks],
                       "published_at": time.time() if published_at is None else published_at})


def decode(raw: Any) -> tuple[Chunks, Optional[float]]:
    """(chunks, published_at). Raises ValueError for a message that is not one of ours."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    body = json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("chunks"), list):
        raise ValueError("not a direct-queue message")
    chunks = [(str(job_id), int(chunk_idx)) for job_id, chunk_idx in body["chunks"]]
    published_at = body.get("published_at")
    return chunks, float(published_at) if isinstance(published_at, (int, float)) else None


def push(client: Any, queue: str, chunks: Sequence[tuple[str, int]]) -> None:
    client.lpush(direct_list(queue), encode(chunks))


def register_consumer(client: Any, queue: str, consumer: str) -> str:
    """Make `consumer`'s processing list known to the sweepers before it takes anything; returns it."""
    processing = processing_list(queue, consumer)
    client.sadd(consumers_key(queue), processing)
    return processing


def take(client: Any, queue: str, processing: str, timeout_s: float) -> Optional[bytes]:
    """The oldest message of `queue`, moved onto `processing`; None after `timeout_s` with none."""
    return client.blmove(direct_list(queue), processing, timeout_s, src="RIGHT", dest="LEFT")


def done(client: Any, processing: str, raw: bytes) -> None:
    """The message has run: it leaves the consumer's processing list."""
    client.lrem(processing, 1, raw)


def restore(client: Any, queue: str, processing: str) -> int:
    """Move every message of a (dead) consumer back to the head of `queue`, one atomic move each, and
    forget the consumer; returns how many moved."""
    moved = 0
    while client.lmove(processing, direct_list(queue), src="RIGHT", dest="RIGHT") is not None:
        moved += 1
    client.srem(consumers_key(queue), processing)
    return moved


def consumers(client: Any, queue: str) -> list[str]:
    return [m.decode() if isinstance(m, bytes) else m for m in client.smembers(consumers_key(queue))]


def restore_dead(client: Any, queue: str, live: Iterable[str], own: str) -> int:
    """Hand back the messages of every consumer of `queue` that is neither live nor `own`."""
    keep = {processing_list(queue, name) for name in [*live, own]}
    return sum(restore(client, queue, processing) for processing in consumers(client, queue)
               if processing not in keep)


def held(client: Any, queues: Iterable[str]) -> int:
    """Messages of `queues` taken by workers and not finished."""
    lists = [p for queue in queues for p in consumers(client, queue)]
    return _lengths(client, lists)


def in_flight(client: Any, queues: Iterable[str]) -> int:
    """Messages queued on or held from the direct lists of `queues`."""
    queues = list(queues)
    return _lengths(client, [direct_list(q) for q in queues]) + held(client, queues)


def _lengths(client: Any, lists: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in lists:
        pipe.llen(key)
    return sum(int(n) for n in pipe.execute())
