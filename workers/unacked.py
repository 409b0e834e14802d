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
    unknown message never makes a model look idle)."""
    from kombu.transport.redis import Channel

    wanted = set(queues)
    count = 0
    for _tag, raw in client.hscan_iter(Channel.unacked_key, count=500):
        try:
            _payload, exchange, routing_key = json.loads(raw)
        except (ValueError, TypeError):
            count += 1
            continue
        if routing_key in wanted or exchange in wanted:
            count += 1
    return count
