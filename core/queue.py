"""The Celery app and the queue names: everything the API needs to publish, nothing that imports torch.

Messages carry ids only (`job_id`, `chunk_idx`); the texts stay in the SQL store. A message
carries one chunk (`rerankq.score_chunk`), or the chunks of several small jobs that an API
process accepted together (`rerankq.score_chunks`, at most one forward pass of pairs): Celery's
cost per message, on the API's publish and on the worker's consume and ack, is then paid once
for all of them.
"""

from __future__ import annotations

import re
import time
from typing import Any, Iterable, Sequence

from celery import Celery
from kombu import Exchange, Queue

from core.settings import Settings

TASK_SCORE_CHUNK = "rerankq.score_chunk"
TASK_SCORE_CHUNKS = "rerankq.score_chunks"
INTERACTIVE = "interactive"
BULK = "bulk"
FALLBACK_LANE = "fallback"  # the degraded-fallback worker's own queue (workers/fallback.py)
SHADOW_LANE = "shadow"  # shadow and rescore jobs (api/shadow.py): taken only when the real lanes are empty
PUBLISHED_AT = "rerankq_published_at"  # message header: epoch seconds when the API published it


def model_key(model_name: str) -> str:
    """A queue-safe form of a model name: 'Qwen/Qwen3-Reranker-0.6B' -> 'qwen-qwen3-reranker-0.6b'."""
    return re.sub(r"[^a-z0-9.]+", "-", model_name.lower()).strip("-") or "default"


def queue_name(model_name: str, lane: str) -> str:
    return f"rerankq.{model_key(model_name)}.{lane}"


def queues_for(model_name: str) -> list[str]:
    """Interactive first: with `queue_order_strategy=priority` a worker drains it before bulk."""
    return [queue_name(model_name, INTERACTIVE), queue_name(model_name, BULK)]


def worker_queues(model_name: str) -> list[str]:
    """What a model's workers consume, in priority order: real traffic first, shadow work last."""
    return [*queues_for(model_name), queue_name(model_name, SHADOW_LANE)]


def declare_queue(name: str) -> Queue:
    """Each queue gets its own exchange and routing key; sharing Celery's default exchange would
    bind both lanes to one key and deliver every bulk message twice."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def broker_options(settings: Settings) -> dict:
    """One visibility timeout for every process that touches the broker (the shortest one wins)."""
    return {
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.unacked_restore_interval_s,
        "unacked_restore_throttle": 1,
        "queue_order_strategy": "priority",
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("rerankq", broker=settings.redis_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_track_started=False,
        task_default_queue=queue_name(settings.served_model, BULK),
        task_queues=[declare_queue(q) for q in queues_for(settings.served_model)],
        task_create_missing_queues=True,
        broker_transport_options=broker_options(settings),
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_soft_shutdown_timeout=min(30.0, settings.chunk_deadline_s),
        task_serializer="json",
        accept_content=["json"],
        worker_send_task_events=settings.worker_send_events,
        task_send_sent_event=settings.worker_send_events,
    )
    return app


RETRY_POLICY = {"max_retries": 3, "interval_start": 0.1, "interval_step": 0.5}


def publish_chunks(app: Celery, job_id: str, chunk_indices: Iterable[int], queue: str,
                   countdown: float | None = None) -> None:
    """One message per chunk; the task id is deterministic so duplicates are recognisable.
    The `published_at` header lets the worker measure queue wait (rerankq_queue_wait_seconds)."""
    with app.producer_or_acquire() as producer:
        for chunk_idx in chunk_indices:
            app.send_task(TASK_SCORE_CHUNK, kwargs={"job_id": job_id, "chunk_idx": chunk_idx},
                          task_id=f"{job_id}:{chunk_idx}", queue=queue, headers={PUBLISHED_AT: time.time()},
                          producer=producer, countdown=countdown, retry=True, retry_policy=RETRY_POLICY)


def publish_chunk_group(app: Celery, chunks: Sequence[tuple[str, int]], queue: str) -> None:
    """The chunks of several jobs, (job_id, chunk_idx) each, in one message (one alone: a plain
    chunk message). The task id names the first chunk and the count."""
    if len(chunks) == 1:
        publish_chunks(app, chunks[0][0], [chunks[0][1]], queue)
        return
    first_job, first_chunk = chunks[0]
    with app.producer_or_acquire() as producer:
        app.send_task(TASK_SCORE_CHUNKS, kwargs={"chunks": [[job_id, chunk_idx] for job_id, chunk_idx in chunks]},
                      task_id=f"{first_job}:{first_chunk}+{len(chunks)}", queue=queue,
                      headers={PUBLISHED_AT: time.time()}, producer=producer, retry=True, retry_policy=RETRY_POLICY)


def messages_in_flight(client: Any, queues: Iterable[str]) -> int:
    """Messages waiting in `queues` (every priority list kombu keeps for them, and their direct lists)
    plus those of them delivered to a worker and not yet acked or finished. 0 means the broker holds
    nothing for these queues, whatever it holds for other models' queues."""
    from kombu.transport.redis import Channel

    from core.direct_queue import in_flight as direct_in_flight
    from core.unacked import unacked_for_queues

    queues = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for step in Channel.priority_steps:
            pipe.llen(f"{queue}{Channel.sep}{step}" if step else queue)
    return sum(int(n) for n in pipe.execute()) + unacked_for_queues(client, queues) + direct_in_flight(client, queues)
