"""Claim, and save, many chunks in one transaction with a few set-based statements.

The worker's group commit (store/group_commit.py) hands in every chunk that arrived together
(claims) or that one forward pass finished (saves). Exactly-once stays with the keys:
a claim counts an attempt only on a pending chunk of an active job; a save inserts the chunk's
packed scores with `ON CONFLICT DO NOTHING` on the chunk's key, and only the insert that
landed may move the chunk `pending -> done`; the job finishes once, under its row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional, Sequence, Union

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from rerankq.schemas import JobStatus
from store.claim_lease import ChunkBusy
from store.case_repeats import insert_cases
from store.jobs import ACTIVE
from store.packed_scores import (ScoreMeta, StoredScore, insert_ignoring_duplicates, meta_ids, pack, scores_by_request,
                                 unpack)
from store.tables import JOB_CHUNKS, JOB_REQUESTS, JOBS, ChunkScores, Job, JobChunk, utcnow

# Statements built once, as plain Core (no ORM layer), with expanding IN parameters: building a
# statement costs more CPU than SQLite takes to run it, and the worker runs these for every group.
_chunks, _jobs, _requests = JOB_CHUNKS, JOBS, JOB_REQUESTS
_NOW = bindparam("now", type_=_chunks.c.finished_at.type)
CLAIMABLE = (
    select(_chunks.c.id, _chunks.c.job_id, _chunks.c.chunk_idx, _chunks.c.request_idx, _chunks.c.doc_start,
           _chunks.c.doc_end, _chunks.c.error, _jobs.c.model)
    .join(_jobs, _jobs.c.id == _chunks.c.job_id)
    .where(_chunks.c.job_id.in_(bindparam("job_ids", expanding=True)),
           _chunks.c.chunk_idx.in_(bindparam("chunk_idxs", expanding=True)),
           _chunks.c.status == "pending", _jobs.c.status.in_(ACTIVE))
)
_UNTIL = bindparam("until", type_=_chunks.c.claimed_until.type)
# An attempt is counted only by the delivery that takes the chunk's claim (store/claim_lease.py): the
# chunk is pending and no other delivery's claim is live.
COUNT_ATTEMPT = (
    update(_chunks).where(_chunks.c.id.in_(bindparam("ids", expanding=True)), _chunks.c.status == "pending",
                          or_(_chunks.c.claimed_until.is_(None), _chunks.c.claimed_until <= _NOW))
    .values(attempts=_chunks.c.attempts + 1, claimed_until=_UNTIL).returning(_chunks.c.id, _chunks.c.attempts)
)
# The chunks a group could not claim (read only then): still pending means another delivery's claim is live.
NOT_CLAIMED = select(_chunks.c.id, _chunks.c.status, _chunks.c.claimed_until).where(
    _chunks.c.id.in_(bindparam("ids", expanding=True)))
START_JOBS = (
    update(_jobs).where(_jobs.c.id.in_(bindparam("job_ids", expanding=True)), _jobs.c.status == JobStatus.queued.value)
    .values(status=JobStatus.running.value, started_at=_NOW)
)
REQUESTS = (
    select(_requests.c.job_id, _requests.c.request_idx, _requests.c.query, _requests.c.instruction,
           _requests.c.documents, _requests.c.max_tokens_per_doc)
    .where(_requests.c.job_id.in_(bindparam("job_ids", expanding=True)),
           _requests.c.request_idx.in_(bindparam("request_idxs", expanding=True)))
)
LOCK_JOBS = (select(_jobs.c.id).where(_jobs.c.id.in_(bindparam("job_ids", expanding=True))).order_by(_jobs.c.id)
             .with_for_update())
MARK_DONE = (
    update(_chunks).where(_chunks.c.id.in_(bindparam("ids", expanding=True)), _chunks.c.status == "pending")
    .values(status="done", finished_at=_NOW).returning(_chunks.c.id)
)
UNFINISHED = (select(_chunks.c.job_id).where(_chunks.c.job_id.in_(bindparam("job_ids", expanding=True)),
                                             _chunks.c.status != "done").group_by(_chunks.c.job_id))
FINISH_JOBS = (
    update(_jobs).where(_jobs.c.id.in_(bindparam("job_ids", expanding=True)), _jobs.c.status.in_(ACTIVE))
    .values(status=JobStatus.succeeded.value, finished_at=_NOW).returning(_jobs.c.id, _jobs.c.n_chunks)
)
FLAG_REQUESTS = (select(_requests.c.job_id, _requests.c.request_idx, _requests.c.query, _requests.c.documents)
                 .where(_requests.c.job_id.in_(bindparam("job_ids", expanding=True)))
                 .order_by(_requests.c.job_id, _requests.c.request_idx))
_INSERT_SCORES: dict[str, object] = {}


def _insert_scores(session: Session):
    dialect = session.get_bind().dialect.name
    statement = _INSERT_SCORES.get(dialect)
    if statement is None:
        statement = _INSERT_SCORES[dialect] = insert_ignoring_duplicates(session, ChunkScores.__table__).returning(
            ChunkScores.__table__.c.chunk_id)
    return statement

# (scores of one request, in document order) -> reasons to flag it; empty when confident.
ConfidenceRule = Callable[[Sequence[float]], list[str]]


@dataclass(frozen=True)
class ChunkWork:
    """Everything a worker needs to score one chunk, read in one go."""

    job_id: str
    chunk_idx: int
    attempt: int
    model: str
    query: str
    instruction: Optional[str]
    documents: list[str]
    doc_start: int
    max_tokens_per_doc: Optional[int]
    request_idx: int
    chunk_id: Optional[int] = None  # job_chunks.id; looked up when missing


@dataclass(frozen=True)
class ChunkSave:
    work: ChunkWork
    scores: Sequence[float]
    meta: ScoreMeta
    rule: Optional[ConfidenceRule] = None  # flags the job this save finishes; save_chunks' rule when None


# What a claim gives for each key: the work, None when there is nothing (left) to do, or ChunkBusy
# when another delivery's claim on the chunk is live (the message should come back later).
Claim = Union[ChunkWork, ChunkBusy, None]


def claim_chunks(session: Session, keys: Sequence[tuple[str, int]], max_attempts: int,
                 lease_s: float = 0.0) -> list[Claim]:
    """Count a delivery of each (job_id, chunk_idx) and return its work, or None when there is
    nothing (left) to do. A chunk delivered more than `max_attempts` times fails its job.

    Each counted delivery claims its chunk for `lease_s`; a copy arriving while a claim is live is no
    attempt and gets a ChunkBusy (returned, not raised: the rest of the group is claimed)."""
    if not keys:
        return []
    wanted = set(keys)
    connection = session.connection()
    job_ids = sorted({job_id for job_id, _ in keys})
    rows = connection.execute(CLAIMABLE, dict(job_ids=job_ids, chunk_idxs=sorted({idx for _, idx in keys}))).all()
    chunks = {(row.job_id, row.chunk_idx): row for row in rows if (row.job_id, row.chunk_idx) in wanted}
    if not chunks:
        return [None] * len(keys)
    now = utcnow()
    attempts: dict[int, int] = dict(connection.execute(COUNT_ATTEMPT, dict(ids=[row.id for row in chunks.values()], now=now,
                                                           until=now + timedelta(seconds=lease_s))).all())
    busy = _busy(connection, {key: row for key, row in chunks.items() if row.id not in attempts}, now)
    claimed = {}
    for key, row in chunks.items():
        attempt = attempts.get(row.id)
        if attempt is None:
            continue
        if attempt > max_attempts:
            fail_chunk(session, row.job_id, row.id,
                       f"chunk {row.chunk_idx} was delivered {attempt} times without finishing "
                       f"(limit RERANKQ_MAX_ATTEMPTS={max_attempts}); last error: {row.error or 'worker lost'}")
            continue
        claimed[key] = (row, attempt)
    if not claimed:
        return [busy.get(key) for key in keys]
    started = sorted({job_id for job_id, _ in claimed})
    connection.execute(START_JOBS, dict(job_ids=started, now=utcnow()))
    request_keys = {(row.job_id, row.request_idx) for row, _ in claimed.values()}
    requests = {
        (r.job_id, r.request_idx): r for r in connection.execute(
            REQUESTS, dict(job_ids=started, request_idxs=sorted({idx for _, idx in request_keys})))
        if (r.job_id, r.request_idx) in request_keys
    }
    works: list[Claim] = []
    taken: set[tuple[str, int]] = set()
    for key in keys:
        if key in taken and lease_s > 0:  # a copy in the same group as the delivery that claimed it
            works.append(ChunkBusy(key[0], key[1], max(1.0, lease_s)))
            continue
        if key not in claimed:
            works.append(busy.get(key))
            continue
        taken.add(key)
        row, attempt = claimed.pop(key)  # a key repeated in one group is claimed once
        request = requests[(row.job_id, row.request_idx)]
        works.append(ChunkWork(
            job_id=row.job_id, chunk_idx=row.chunk_idx, attempt=attempt, model=row.model, query=request.query,
            instruction=request.instruction, documents=list(request.documents[row.doc_start:row.doc_end]),
            doc_start=row.doc_start, max_tokens_per_doc=request.max_tokens_per_doc, request_idx=row.request_idx,
            chunk_id=row.id,
        ))
    return works


def _busy(connection, unclaimed: dict, now) -> dict[tuple[str, int], ChunkBusy]:
    """For the pending chunks whose claim was not taken: a ChunkBusy with the time left on the live
    claim (read afresh; a chunk finished meanwhile is nothing to do, so not here)."""
    if not unclaimed:
        return {}
    state = {row.id: row for row in connection.execute(NOT_CLAIMED, dict(ids=[r.id for r in unclaimed.values()]))}
    found = {}
    for key, row in unclaimed.items():
        current = state.get(row.id)
        if current is None or current.status != "pending":
            continue
        left = (current.claimed_until - now).total_seconds() if current.claimed_until is not None else 0.0
        found[key] = ChunkBusy(key[0], key[1], max(1.0, left))
    return found


def fail_chunk(session: Session, job_id: str, chunk_id: Optional[int], error: str) -> None:
    """Fail a pending chunk (when given) and its job, if still active."""
    if chunk_id is not None:
        session.execute(
            update(JobChunk).where(JobChunk.id == chunk_id, JobChunk.status == "pending")
            .values(status="failed", error=error[:2000], finished_at=utcnow())
        )
    session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
        .values(status=JobStatus.failed.value, error=error[:2000], finished_at=utcnow())
    )


def _chunk_ids(session: Session, saves: Sequence[ChunkSave]) -> list[Optional[int]]:
    """Each save's chunk id; None where no chunk row was found."""
    missing = [s.work for s in saves if s.work.chunk_id is None]
    found = {}
    if missing:
        found = {(r.job_id, r.chunk_idx): r.id for r in session.execute(
            select(JobChunk.id, JobChunk.job_id, JobChunk.chunk_idx)
            .where(JobChunk.job_id.in_({w.job_id for w in missing}),
                   JobChunk.chunk_idx.in_({w.chunk_idx for w in missing})))}
    return [s.work.chunk_id if s.work.chunk_id is not None else found.get((s.work.job_id, s.work.chunk_idx))
            for s in saves]


def save_chunks(session: Session, saves: Sequence[ChunkSave], rule: Optional[ConfidenceRule] = None) -> list[bool]:
    """Write each chunk's scores once; True for the save that finished its job (one per job)."""
    if not saves:
        return []
    job_ids = sorted({s.work.job_id for s in saves})
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Lock the job rows first (in one order, so two groups cannot deadlock): two chunks finishing
        # together cannot both miss the end of their job. (SQLite's one writer already serializes this.)
        connection.execute(LOCK_JOBS, dict(job_ids=job_ids))
    ids = meta_ids(session, (s.meta for s in saves))
    chunk_ids = _chunk_ids(session, saves)
    rows, writer = [], {}  # chunk id -> the index of the save whose scores are written for it
    for i, (save, chunk_id) in enumerate(zip(saves, chunk_ids)):
        if chunk_id is not None and chunk_id not in writer:
            writer[chunk_id] = i
            rows.append(dict(chunk_id=chunk_id, score_meta_id=ids[save.meta], scores=pack(save.scores)))
    if not rows:
        return [False] * len(saves)
    inserted = set(connection.execute(_insert_scores(session), rows).scalars())
    now = utcnow()
    marked = set(connection.execute(MARK_DONE, dict(ids=sorted(inserted), now=now)).scalars()) if inserted else set()
    # The saves whose scores this group stored: a second delivery of a chunk in the same group is not one,
    # so the save that reports a finished job holds the very scores committed (the worker hands them on).
    stored = sorted(i for chunk_id, i in writer.items() if chunk_id in marked)
    touched = sorted({saves[i].work.job_id for i in stored})
    finished: dict[str, int] = {}  # job id -> its chunk count
    if touched:
        unfinished = set(connection.execute(UNFINISHED, dict(job_ids=touched)).scalars())
        complete = [job_id for job_id in touched if job_id not in unfinished]
        if complete:
            finished = dict(connection.execute(FINISH_JOBS, dict(job_ids=complete, now=now)).all())
    # The last save of a finished job in this group is the one that reports (and flags) it.
    last = {saves[i].work.job_id: i for i in stored}
    to_flag = []
    for job_id in sorted(finished):
        reporter = saves[last[job_id]]
        own = [saves[i] for i in stored if saves[i].work.job_id == job_id]
        # Every chunk of the job was written by this group (always so for a one-chunk job):
        # flag from the scores in hand instead of reading them back.
        in_hand = _scores_in_hand(own) if len(own) == finished[job_id] else None
        to_flag.append((job_id, reporter.rule or rule or (lambda _values: []), in_hand))
    flag_jobs(session, to_flag)
    return [save.work.job_id in finished and last.get(save.work.job_id) == i for i, save in enumerate(saves)]


def _scores_in_hand(saves: Sequence[ChunkSave]) -> dict[int, list[StoredScore]]:
    """What scores_by_request would read back for these saves (float32, as stored)."""
    grouped: dict[int, list[StoredScore]] = {}
    for save in sorted(saves, key=lambda s: (s.work.request_idx, s.work.doc_start)):
        grouped.setdefault(save.work.request_idx, []).extend(
            StoredScore(save.work.request_idx, save.work.doc_start + i, value, save.meta)
            for i, value in enumerate(unpack(pack(save.scores))))
    return grouped


def flag_cases(session: Session, job_id: str, rule: ConfidenceRule,
               scores: Optional[dict[int, list[StoredScore]]] = None) -> int:
    """Snapshot every request of a finished job that the rule flags; returns how many.
    `scores`: the job's scores by request when the caller has them all (else they are read)."""
    return flag_jobs(session, [(job_id, rule, scores)])


def flag_jobs(session: Session,
              jobs: Sequence[tuple[str, ConfidenceRule, Optional[dict[int, list[StoredScore]]]]]) -> int:
    """`flag_cases` for every job a group finished, with one read of the flagged requests' texts and
    one insert of their cases, whatever the number of jobs."""
    flagged: dict[tuple[str, int], tuple[list[str], list[StoredScore]]] = {}
    for job_id, rule, scores in jobs:
        if scores is None:
            scores = scores_by_request(session, job_id)
        for request_idx, request_scores in scores.items():
            reasons = rule([s.score for s in request_scores]) if request_scores else []
            if reasons:
                flagged[(job_id, request_idx)] = (reasons, request_scores)
    if not flagged:
        return 0
    rows = []
    job_ids = sorted({job_id for job_id, _request_idx in flagged})
    for request in session.connection().execute(FLAG_REQUESTS, dict(job_ids=job_ids)):
        found = flagged.get((request.job_id, request.request_idx))
        if found is None:
            continue
        reasons, request_scores = found
        values = [s.score for s in request_scores]
        first = request_scores[0]
        rows.append(dict(
            job_id=request.job_id, request_idx=request.request_idx, reasons=reasons, reason=reasons[0],
            query=request.query, instruction=first.instruction, documents=request.documents, scores=values,
            top_score=max(values), model=first.model, model_revision=first.model_revision,
            score_type=first.score_type, status="open", created_at=utcnow(),
        ))
    if rows:  # identical requests collapse into one case: a later one is a repeat of the first
        insert_cases(session, rows, lambda table, values: session.execute(insert_ignoring_duplicates(session, table),
                                                                          values))
    return len(rows)
