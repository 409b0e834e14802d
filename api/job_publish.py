"""Publishing what one group commit stored (store/group_commit.py): the small jobs that concurrent
requests submitted together leave as one message per queue (core/queue.py `publish_chunk_group`).

This runs on the committer thread right after the group's transaction commits, before any of its
requests is answered, so a job is in SQL before its message exists and published before its
submitter hears back. A message carries at most one forward pass of pairs (RERANKQ_MAX_BATCH_PAIRS,
or one chunk when a chunk alone is larger), so grouping never piles more work on one worker than it
scores at once; with more workers, the next message goes to the next free one. A publish that fails
leaves its jobs unmarked, and a worker's sweeper publishes them later.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy.orm import Session

from api.admission import Reservation, release_all
from api.state import AppState
from core import direct_queue
from core.queue import publish_chunk_group
from store.group_commit import committer
from store.jobs import ChunkPlan, NewJob, mark_all_published

log = logging.getLogger(__name__)


@dataclass
class Submission:
    """One submit as the committer sees it: the job, its tenant's quota (0: none), the app it came to,
    and its admission reservation, which publishing releases (`released`) once its messages are queued."""

    job: NewJob
    tenant_limit: int
    state: AppState
    reservation: Optional[Reservation] = None
    released: bool = False


def publish_stored(items: Sequence[Submission], plans: list[list[ChunkPlan]]) -> None:
    """Publish every chunk of the group's jobs, packed per queue into messages of one forward pass,
    then release the group's admission reservations in one round trip. Sync jobs go on the queue's
    direct list (core/direct_queue.py) when RERANKQ_SYNC_DIRECT is on."""
    try:
        _publish(items, plans)
    finally:
        _release_reservations(items)


def _release_reservations(items: Sequence[Submission]) -> None:
    """A reservation left here is released by its submitter (api/submit.py), or expires."""
    by_app: dict[int, tuple[AppState, list[Submission]]] = {}
    for item in items:
        if item.reservation is not None:
            by_app.setdefault(id(item.state), (item.state, []))[1].append(item)
    for state, held in by_app.values():
        try:
            release_all(state.redis, [item.reservation for item in held if item.reservation is not None])
        except Exception as error:  # noqa: BLE001 - each submitter releases its own then
            log.warning("could not release admission reservations: %s", error)
            continue
        for item in held:
            item.released = True


def _publish(items: Sequence[Submission], plans: list[list[ChunkPlan]]) -> None:
    by_queue: dict[tuple[int, str, bool], tuple[AppState, list[tuple[str, int, int]]]] = {}
    for item, job_plans in zip(items, plans):
        settings = item.state.settings
        if settings.fault_publish_fails:
            log.warning("publishing job %s failed (RERANKQ_FAULT_PUBLISH_FAILS); the sweeper will publish it",
                        item.job.job_id)
            continue
        direct = settings.sync_direct and item.job.kind == "sync"
        _state, refs = by_queue.setdefault((id(item.state), item.job.queue, direct), (item.state, []))
        refs.extend((item.job.job_id, plan.chunk_idx, plan.doc_end - plan.doc_start) for plan in job_plans)
    for (_app, queue, direct), (state, refs) in by_queue.items():
        for chunks in pack(refs, state.settings.max_batch_pairs):
            job_ids = list(dict.fromkeys(job_id for job_id, _chunk in chunks))
            try:
                if direct:
                    direct_queue.push(state.redis, queue, chunks)
                else:
                    publish_chunk_group(state.celery, chunks, queue)
            except Exception as error:  # noqa: BLE001 - the sweeper publishes them later
                log.warning("publishing jobs %s failed (%s); the sweeper will publish them", ", ".join(job_ids), error)
                continue
            committer(state.settings.database_url).submit(_mark_published, job_ids, share_transaction=True) \
                .add_done_callback(_log_mark_failure)


def pack(refs: Sequence[tuple[str, int, int]], max_pairs: int) -> list[list[tuple[str, int]]]:
    """(job_id, chunk_idx, pairs) in order -> messages of (job_id, chunk_idx) holding at most `max_pairs`
    pairs, or one chunk that alone holds more."""
    messages: list[list[tuple[str, int]]] = []
    size = 0
    for job_id, chunk_idx, pairs in refs:
        if not messages or size + pairs > max_pairs:
            messages.append([])
            size = 0
        messages[-1].append((job_id, chunk_idx))
        size += pairs
    return messages


def _mark_published(session: Session, groups: Sequence[list[str]]) -> list[None]:
    """Not waited for: the mark only keeps the sweeper from publishing a job again (harmless if it does).
    It shares the transaction of the next jobs stored (store/group_commit.py), so under load a group of
    submits costs one commit, not two."""
    mark_all_published(session, [job_id for job_ids in groups for job_id in job_ids])
    return [None] * len(groups)


def _log_mark_failure(future: Future) -> None:
    if future.exception() is not None:
        log.warning("could not mark jobs published (%s); a worker's sweeper may publish them again, harmlessly",
                    future.exception())
