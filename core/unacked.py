"""Delivered-but-unacked messages of some queues only.

Kombu's Redis transport keeps every unacked message of every queue in one `unacked` hash, as
`[payload, exchange, routing_key]`. Whether one model's messages were lost must be decided from
that model's entries: in a multi-model deployment under load the hash is never empty as a whole,
and a sweep that waited for that never ran.
"""

from __future__ import annotations

import json
from typing import Any, Iterable


def unacked_for_queues(client: Any, queues: Iterable[str]) -> int:
    """How many unacked messages were routed to `queues` (an entry that cannot be read counts, so an
    unknown message never makes a model look idle).

    Only the routing key, the entry's last element, is read: parsing every payload cost the API
    milliseconds per submit with a few dozen messages in flight."""
    from kombu.transport.redis import Channel

    wanted = {json.dumps(q).encode() for q in queues}  # the routing key as JSON, e.g. b'"rerankq.m.bulk"'
    count = 0
    for raw in client.hvals(Channel.unacked_key):
        tail = raw.rstrip()
        if not tail.endswith(b"]"):
            count += 1  # not kombu's [payload, exchange, routing_key]: count it to be safe
            continue
        start = tail.rfind(b",", 0, len(tail) - 1)
        if start < 0 or tail[start + 1:-1].strip() in wanted:
            count += 1
    return count
