"""Duplicate deliveries of a chunk that is being worked on are not attempts, and one sweeper
publishes an unpublished job (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from store.chunk_batch import ChunkWork, claim_chunks
from store.claim_lease import ChunkBusy
from store.db import session_scope
from store.jobs import get_job
from store.publish_claim import claim_publication, undo_publication
from store.packed_scores import stored_scores
from store.tables import ChunkScores, JobChunk, utcnow
from store.work import claim_chunk, record_error, save_scores
from tests.store.test_jobs_and_work import META, never, new_job, request
from workers.grouped_store import claim_grouped


def attempts(url: str, job_id: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(JobChunk.attempts).where(JobChunk.job_id == job_id))


def test_copies_delivered_while_a_claim_is_live_are_not_attempts(database_url):
    job_id = new_job(database_url, [request(2)])
    with session_scope(database_url) as session:
        work = claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60)
    assert work.attempt == 1
    for _copy in range(5):  # more copies than attempts allowed
        with pytest.raises(ChunkBusy) as busy:
            with session_scope(database_url) as session:
                claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60)
        assert 1 <= busy.value.retry_in_s <= 60
    assert attempts(database_url, job_id) == 1
    with session_scope(database_url) as session:
        assert save_scores(session, work, [0.5, 0.6], META, never) is True
    with session_scope(database_url) as session:
        assert get_job(session, job_id).status == "succeeded"
        assert claim_chunk(session, job_id, 0, 3, lease_s=60) is None  # a late copy finds it done
        assert len(stored_scores(session, job_id)) == 2
        assert session.scalar(select(func.count()).select_from(ChunkScores)
                              .join(JobChunk, JobChunk.id == ChunkScores.chunk_id)
                              .where(JobChunk.job_id == job_id)) == 1


def test_a_failed_attempt_releases_the_claim_and_an_expired_claim_counts(database_url):
    job_id = new_job(database_url, [request(1)])
    with session_scope(database_url) as session:
        claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60)
    with session_scope(database_url) as session:
        record_error(session, job_id, 0, "model error")
    with session_scope(database_url) as session:  # the retry claims at once
        assert claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60).attempt == 2
    with session_scope(database_url) as session:  # its worker died: the claim runs out
        session.execute(update(JobChunk).where(JobChunk.job_id == job_id)
                        .values(claimed_until=utcnow() - timedelta(seconds=1)))
    with session_scope(database_url) as session:
        assert claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60).attempt == 3
    with session_scope(database_url) as session:
        session.execute(update(JobChunk).where(JobChunk.job_id == job_id).values(claimed_until=None))
    with session_scope(database_url) as session:
        assert claim_chunk(session, job_id, 0, max_attempts=3, lease_s=60) is None
    with session_scope(database_url) as session:
        assert get_job(session, job_id).status == "failed"


def test_a_group_claim_counts_one_attempt_per_chunk_and_answers_copies_busy(database_url):
    one, two = new_job(database_url, [request(1)]), new_job(database_url, [request(1)])
    with session_scope(database_url) as session:  # two copies of one chunk in one group
        first = claim_chunks(session, [(one, 0), (one, 0), (two, 0)], max_attempts=3, lease_s=60)
    assert isinstance(first[0], ChunkWork) and isinstance(first[2], ChunkWork)
    assert isinstance(first[1], ChunkBusy) and first[1].retry_in_s == 60
    with session_scope(database_url) as session:  # copies in a later group, one chunk finished meanwhile
        assert save_scores(session, first[2], [0.5], META, never) is True
    with session_scope(database_url) as session:
        later = claim_chunks(session, [(one, 0), (two, 0)], max_attempts=3, lease_s=60)
    assert isinstance(later[0], ChunkBusy) and 1 <= later[0].retry_in_s <= 60 and later[1] is None
    assert attempts(database_url, one) == 1 and attempts(database_url, two) == 1
    with pytest.raises(ChunkBusy):  # through the worker's group committer too
        claim_grouped(database_url, one, 0, max_attempts=3, lease_s=60)
    assert attempts(database_url, one) == 1


def test_one_sweeper_publishes_an_unpublished_job(database_url):
    job_id = new_job(database_url, [request(1)])
    with session_scope(database_url) as session:
        assert claim_publication(session, job_id) is True
    with session_scope(database_url) as session:
        assert claim_publication(session, job_id) is False
    with session_scope(database_url) as session:  # publishing failed: a later sweep may try again
        undo_publication(session, job_id)
    with session_scope(database_url) as session:
        assert claim_publication(session, job_id) is True
