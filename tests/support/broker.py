"""What waits on the broker, read straight from Redis: the chunk refs of each queued message."""

from __future__ import annotations

import base64
import json
from typing import Iterable


def queued_chunks(client, queues: Iterable) -> list[list[tuple[str, int]]]:
    """The (job_id, chunk_idx) refs of every message waiting on `queues`, one list per message
    (a `rerankq.score_chunk` message holds one, a `rerankq.score_chunks` message several)."""
    messages = []
    for queue in queues:
        for raw in client.lrange(queue, 0, -1):
            _args, kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
            refs = kwargs.get("chunks") or [[kwargs["job_id"], kwargs["chunk_idx"]]]
            messages.append([(job_id, chunk_idx) for job_id, chunk_idx in refs])
    return messages
