"""What a group commit publishes (api/job_publish.py): the chunks of jobs stored together leave as
few messages as one forward pass allows, per queue; a failed publish leaves its jobs for the
sweeper (unmarked), and every published job is marked."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest

from api import job_publish
from api.job_publish import Submission, publish_stored
from core.settings import Settings
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import NewJob, insert_jobs
from store.migrate import upgrade
from store.tables import Job


@pytest.fixture()
def database_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    return url


def stored_group(url: str, sizes: list[int], queue: str = "q.interactive", **settings) -> list[Submission]:
    state = SimpleNamespace(settings=Settings(_env_file=None, database_url=url, **settings), celery=object())
    jobs = [NewJob(str(uuid.uuid4()), [RerankRequest(query="q", documents=["d"] * n)], "m", queue, 256)
            for n in sizes]
    with session_scope(url) as session:
        plans = insert_jobs(session, jobs)
    return [Submission(job, 0, state) for job in jobs], plans  # type: ignore[arg-type, return-value]


def published_ids(url: str) -> set[str]:
    with session_scope(url) as session:
        return set(session.scalars(Job.__table__.select().with_only_columns(Job.id).where(Job.published_at.is_not(None))))


def wait_marked(url: str, count: int) -> set[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ids = published_ids(url)
        if len(ids) >= count:
            return ids
        time.sleep(0.02)
    return published_ids(url)


def test_small_jobs_leave_in_messages_of_one_forward_pass(database_url, monkeypatch):
    sent: list[tuple[list, str]] = []
    monkeypatch.setattr(job_publish, "publish_chunk_group", lambda _app, chunks, queue: sent.append((chunks, queue)))
    items, plans = stored_group(database_url, [10] * 8, max_batch_pairs=64)
    publish_stored(items, plans)
    assert [len(chunks) for chunks, _queue in sent] == [6, 2]  # 60 pairs, then the 20 that did not fit
    assert [chunk for chunks, _queue in sent for chunk in chunks] == [(item.job.job_id, 0) for item in items]
    assert wait_marked(database_url, 8) == {item.job.job_id for item in items}


def test_a_chunk_larger_than_a_forward_pass_goes_alone(database_url, monkeypatch):
    sent: list[list] = []
    monkeypatch.setattr(job_publish, "publish_chunk_group", lambda _app, chunks, _queue: sent.append(chunks))
    items, plans = stored_group(database_url, [5, 200, 5], max_batch_pairs=64)
    publish_stored(items, plans)
    assert [len(chunks) for chunks in sent] == [1, 1, 1]


def test_jobs_on_different_queues_never_share_a_message(database_url, monkeypatch):
    sent: list[tuple[list, str]] = []
    monkeypatch.setattr(job_publish, "publish_chunk_group", lambda _app, chunks, queue: sent.append((chunks, queue)))
    interactive, plans_a = stored_group(database_url, [3, 3], queue="q.interactive")
    bulk, plans_b = stored_group(database_url, [3], queue="q.bulk")
    publish_stored(interactive + bulk, plans_a + plans_b)
    assert sorted((queue, len(chunks)) for chunks, queue in sent) == [("q.bulk", 1), ("q.interactive", 2)]


def test_a_failed_publish_leaves_its_jobs_for_the_sweeper(database_url, monkeypatch):
    def fail_the_first(_app, chunks, _queue):
        if not getattr(fail_the_first, "failed", False):
            fail_the_first.failed = True  # type: ignore[attr-defined]
            raise ConnectionError("broker down")

    monkeypatch.setattr(job_publish, "publish_chunk_group", fail_the_first)
    items, plans = stored_group(database_url, [40, 40, 40], max_batch_pairs=64)  # three messages
    publish_stored(items, plans)
    marked = wait_marked(database_url, 2)
    time.sleep(0.2)  # nothing more arrives
    assert published_ids(database_url) == marked == {items[1].job.job_id, items[2].job.job_id}


def test_the_publish_fault_setting_publishes_nothing(database_url, monkeypatch):
    sent: list = []
    monkeypatch.setattr(job_publish, "publish_chunk_group", lambda *args: sent.append(args))
    items, plans = stored_group(database_url, [2, 2], fault_publish_fails=True)
    publish_stored(items, plans)
    time.sleep(0.2)
    assert sent == [] and published_ids(database_url) == set()


class _RecordingRedis:
    """Records the ZREMs of each pipeline (pure unit test: admission's Redis side is tested on a real server)."""

    def __init__(self, fail: bool = False) -> None:
        self.pipelines: list[list[tuple[str, str]]] = []
        self.fail = fail

    def pipeline(self, transaction: bool = True):
        recorder, calls = self, []

        class _Pipe:
            def zrem(self, key, member):
                calls.append((key, member))

            def execute(self):
                if recorder.fail:
                    raise ConnectionError("redis is down")
                recorder.pipelines.append(calls)

        return _Pipe()


def with_reservations(items, client) -> list:
    from api.admission import Reservation

    state = SimpleNamespace(settings=items[0].state.settings, celery=items[0].state.celery, redis=client)
    for n, item in enumerate(items):  # one API process: one state
        item.state = state
        item.reservation = Reservation("rerankq:admission:m", f"r{n}:1")
    return items


def test_a_group_s_admission_reservations_are_released_together_once_published(database_url, monkeypatch):
    monkeypatch.setattr(job_publish, "publish_chunk_group", lambda _app, chunks, queue: None)
    client = _RecordingRedis()
    items, plans = stored_group(database_url, [5, 5, 5])
    publish_stored(with_reservations(items, client), plans)
    assert client.pipelines == [[("rerankq:admission:m", f"r{n}:1") for n in range(3)]]  # one round trip
    assert all(item.released for item in items)


def test_reservations_are_released_even_when_publishing_fails_and_left_to_submitters_when_redis_fails(
        database_url, monkeypatch):
    def broken(_app, chunks, queue):
        raise RuntimeError("broker down")

    monkeypatch.setattr(job_publish, "publish_chunk_group", broken)
    client = _RecordingRedis()
    items, plans = stored_group(database_url, [5, 5])
    publish_stored(with_reservations(items, client), plans)
    assert len(client.pipelines) == 1 and all(item.released for item in items)
    down = _RecordingRedis(fail=True)
    items, plans = stored_group(database_url, [5])
    publish_stored(with_reservations(items, down), plans)
    assert not items[0].released  # api/submit.py releases it itself, or it expires
