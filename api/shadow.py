"""Shadow traffic: a sampled share of the default model's jobs is copied for each shadow model.

The copy is made after the client's job is published, on a small thread pool, so the client's
request never waits for it; it rides the shadow model's shadow lane, which workers take only when
their interactive and bulk lanes are empty. A copy that cannot be made is logged and dropped:
shadow results are measurements, never answers.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from api.state import AppState
from store.db import session_scope
from store.jobs import mark_published
from store.shadow_jobs import SHADOW, create_copy_job
from core.queue import SHADOW_LANE, publish_chunks, queue_name

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rerankq-shadow")


def shadow_later(state: AppState, job_id: str, model: str, n_requests: int,
                 draw: Callable[[], float] = random.random) -> None:
    """Pick the shadow models this job is sampled for, and copy it for them off the request path."""
    if model != state.settings.served_model:
        return
    chosen = [name for name, rate in state.settings.shadow_models.items() if name != model and draw() < rate]
    if chosen:
        _pool.submit(_copy_all, state, job_id, n_requests, chosen)


def _copy_all(state: AppState, job_id: str, n_requests: int, models: list[str]) -> None:
    for name in models:
        try:
            copy_for(state, job_id, n_requests, name)
        except Exception as error:  # noqa: BLE001 - a shadow copy must never disturb real traffic
            log.warning("shadow copy of job %s for %s failed: %s", job_id, name, error)


def copy_for(state: AppState, job_id: str, n_requests: int, model: str) -> Optional[str]:
    """One shadow job for `model`; None when its shadow lane is already deeper than the queue limit."""
    settings = state.settings
    queue = queue_name(model, SHADOW_LANE)
    if int(state.redis.llen(queue)) >= settings.max_queue_depth:
        log.info("shadow lane %s is full; job %s is not copied", queue, job_id)
        return None
    with session_scope(settings.database_url) as session:
        copy_id, chunks = create_copy_job(session, [(job_id, i) for i in range(n_requests)], model=model,
                                          queue=queue, purpose=SHADOW, chunk_pairs=settings.chunk_pairs)
    if copy_id:
        publish_chunks(state.celery, copy_id, chunks, queue)
        with session_scope(settings.database_url) as session:
            mark_published(session, copy_id)
    return copy_id or None
