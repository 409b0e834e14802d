"""Group commit on real databases: many chunks claimed and saved in one transaction with a fixed
number of statements, exactly once under duplicate saves, and the worker's committer thread
grouping the saves that arrive together."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import event, func, select

from rerankq.schemas import RerankRequest
from store.chunk_batch import ChunkSave, claim_chunks, save_chunks
from store.db import get_engine, session_scope
from store.jobs import create_job, get_job, job_view
from store.packed_scores import ScoreMeta, stored_scores
from store.tables import ChunkScores
from store.group_commit import GroupCommitter

META = ScoreMeta(model="m", model_revision="r1", score_type="p_yes", instruction="inst")


def new_job(url: str, n_docs: int, chunk_pairs: int = 1) -> str:
    job_id = str(uuid.uuid4())
    with session_scope(url) as session:
        create_job(session, job_id=job_id, model="m", queue="q", chunk_pairs=chunk_pairs,
                   requests=[RerankRequest(query="q", documents=[f"doc {i}" for i in range(n_docs)])])
    return job_id


def claim(url: str, keys):
    with session_scope(url) as session:
        return claim_chunks(session, keys, max_attempts=3)


def save(url: str, saves):
    with session_scope(url) as session:
        return save_chunks(session, saves)


class StatementCounter:
    def __init__(self, url: str) -> None:
        self.engine, self.count, self.statements = get_engine(url), 0, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, _connection, _cursor, statement, *args) -> None:
        self.count += 1
        self.statements.append(statement)


def test_a_group_costs_the_same_statements_for_one_chunk_or_twenty(database_url):
    warm, other, many = new_job(database_url, 1), new_job(database_url, 1), new_job(database_url, 20)
    save(database_url, [ChunkSave(claim(database_url, [(warm, 0)])[0], [0.5], META)])  # the meta row now exists
    counts = []
    for job_id, n in ((other, 1), (many, 20)):
        with StatementCounter(database_url) as claims:
            works = claim(database_url, [(job_id, i) for i in range(n)])
        with StatementCounter(database_url) as saves:
            finished = save(database_url, [ChunkSave(w, [0.25 + i / 64], META) for i, w in enumerate(works)])
        assert all(works) and finished == [False] * (n - 1) + [True]
        counts.append((claims.count, saves.count))
    assert counts[0] == counts[1], counts  # set-based: no statement per chunk
    with session_scope(database_url) as session:
        view = job_view(session, get_job(session, many))
    assert view.status.value == "succeeded" and view.progress.done == 20
    assert [r.index for r in view.results[0].results] == list(range(19, -1, -1))


def test_duplicate_saves_of_a_chunk_keep_the_first_scores_and_one_row(database_url):
    job_id = new_job(database_url, 3)
    works = claim(database_url, [(job_id, 0), (job_id, 1), (job_id, 2)])
    # The same chunk twice in one group: the first wins, the second writes nothing.
    assert save(database_url, [ChunkSave(works[0], [0.5], META), ChunkSave(works[0], [0.75], META)]) == [False, False]
    # A redelivery saved again later, grouped with chunks that are new: only those land.
    assert save(database_url, [ChunkSave(works[1], [0.25], META), ChunkSave(works[0], [0.875], META),
                               ChunkSave(works[2], [0.125], META)]) == [False, False, True]
    assert save(database_url, [ChunkSave(works[2], [0.0625], META)]) == [False]
    with session_scope(database_url) as session:
        assert [(s.doc_index, s.score) for s in stored_scores(session, job_id)] == [(0, 0.5), (1, 0.25), (2, 0.125)]
        assert session.scalar(select(func.count()).select_from(ChunkScores)) == 3
    # Nothing is left to claim, however often the messages come back.
    assert claim(database_url, [(job_id, 0), (job_id, 1), (job_id, 2)]) == [None, None, None]


def test_the_save_that_reports_a_finished_job_is_the_one_whose_scores_were_stored(database_url):
    # A one-chunk job delivered twice, both saves in one group: the first's scores are stored, so the
    # first reports the end (the worker hands the reporter's scores to a waiting POST /v1/rerank).
    job_id = new_job(database_url, 2, chunk_pairs=2)
    work = claim(database_url, [(job_id, 0)])[0]
    assert save(database_url, [ChunkSave(work, [0.5, 0.25], META), ChunkSave(work, [0.75, 0.125], META)]) == [
        True, False]
    with session_scope(database_url) as session:
        assert [s.score for s in stored_scores(session, job_id)] == [0.5, 0.25]


def test_a_repeated_key_in_one_claim_group_counts_one_attempt(database_url):
    job_id = new_job(database_url, 1)
    first, second = claim(database_url, [(job_id, 0), (job_id, 0)])
    assert first is not None and first.attempt == 1 and second is None


def test_the_committer_groups_saves_that_arrive_together(database_url):
    job_id = new_job(database_url, 16)
    works = claim(database_url, [(job_id, i) for i in range(16)])
    committer = GroupCommitter(database_url)
    gate, entered = threading.Event(), threading.Event()

    def hold(_session, items):  # keeps the committer busy while the saves queue up behind it
        entered.set()
        gate.wait(10)
        return [None] * len(items)

    blocker = threading.Thread(target=committer.run, args=(hold, None))
    blocker.start()
    assert entered.wait(10)
    results: dict[int, bool] = {}
    threads = [threading.Thread(target=lambda w=w: results.__setitem__(
        w.chunk_idx, committer.run(save_chunks, ChunkSave(w, [0.5], META)))) for w in works]
    [t.start() for t in threads]
    while committer._queue.qsize() < 16:
        threading.Event().wait(0.01)
    gate.set()
    [t.join(30) for t in threads]
    blocker.join(10)
    assert committer.groups == 2 and committer.items == 17  # the 16 saves went in one transaction
    assert sorted(results) == list(range(16)) and list(results.values()).count(True) == 1
    with session_scope(database_url) as session:
        assert get_job(session, job_id).status == "succeeded"


def test_a_failing_item_fails_only_its_own_caller(database_url):
    job_id = new_job(database_url, 2)
    good, bad = claim(database_url, [(job_id, 0), (job_id, 1)])
    committer = GroupCommitter(database_url)
    gate, entered = threading.Event(), threading.Event()
    threading.Thread(target=committer.run, args=(lambda s, items: (entered.set(), gate.wait(10), [None])[-1],
                                                 None)).start()
    assert entered.wait(10)
    outcomes: dict[str, object] = {}

    def run(name, item):
        try:
            outcomes[name] = committer.run(save_chunks, item)
        except Exception as error:  # noqa: BLE001
            outcomes[name] = error

    threads = [threading.Thread(target=run, args=("good", ChunkSave(good, [0.5], META))),
               threading.Thread(target=run, args=("bad", ChunkSave(bad, ["not a number"], META)))]
    [t.start() for t in threads]
    while committer._queue.qsize() < 2:
        threading.Event().wait(0.01)
    gate.set()
    [t.join(30) for t in threads]
    assert outcomes["good"] is False and isinstance(outcomes["bad"], Exception)
    with session_scope(database_url) as session:
        assert [(s.doc_index, s.score) for s in stored_scores(session, job_id)] == [(0, 0.5)]


def test_a_job_finished_within_one_group_is_flagged_from_the_scores_in_hand(database_url):
    from store.tables import LowConfidenceCase

    job_id = str(uuid.uuid4())
    with session_scope(database_url) as session:
        create_job(session, job_id=job_id, model="m", queue="q", chunk_pairs=2,
                   requests=[RerankRequest(query="q0", documents=["a", "b", "c"]),
                             RerankRequest(query="q1", documents=["d"])])
    works = claim(database_url, [(job_id, i) for i in range(3)])
    seen = []

    def rule(values):
        seen.append(list(values))
        return ["low_top_score"] if max(values) < 0.3 else []

    # Chunks handed in out of order; the rule still sees each request's scores in document order.
    saves = [ChunkSave(works[2], [0.0625], META, rule), ChunkSave(works[1], [0.1875], META, rule),
             ChunkSave(works[0], [0.25, 0.125], META, rule)]
    with StatementCounter(database_url) as statements:
        assert save(database_url, saves) == [False, False, True]
    assert seen == [[0.25, 0.125, 0.1875], [0.0625]]
    with session_scope(database_url) as session:
        cases = session.scalars(select(LowConfidenceCase).where(LowConfidenceCase.job_id == job_id)
                                .order_by(LowConfidenceCase.request_idx)).all()
    assert [(c.request_idx, c.query, c.documents, c.scores, c.instruction, c.model_revision) for c in cases] == [
        (0, "q0", ["a", "b", "c"], [0.25, 0.125, 0.1875], "inst", "r1"), (1, "q1", ["d"], [0.0625], "inst", "r1")]
    reads = [sql for sql in statements.statements if sql.lstrip().upper().startswith("SELECT") and "chunk_scores" in sql]
    assert reads == []  # nothing read back: the scores were in hand
