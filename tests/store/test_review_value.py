"""The review queue's value order: its parts (unit tests of the pure functions), the order the store
gives on SQLite and PostgreSQL (repeated queries, shadow disagreement), and identical requests
collapsing into one case with a count and their jobs."""

from __future__ import annotations

import math
import uuid

import pytest
from sqlalchemy import select

from rerankq.schemas import RerankRequest
from store.case_repeats import repeat_counts, repeat_jobs
from store.db import session_scope
from store.jobs import create_job
from store.review_value import ValueRules, by_value, frequency, uncertainty, value_of
from store.reviews import CaseQuery, list_cases, next_open_case
from store.packed_scores import ScoreMeta, meta_ids, pack
from store.shadow_jobs import SHADOW, create_copy_job
from store.tables import ChunkScores, Job, JobChunk, LowConfidenceCase
from store.work import flag_cases

RULES = ValueRules(low_top_score=0.5, low_margin=0.05, frequency_days=7, frequency_saturation=100)


def test_uncertainty_peaks_at_a_tie_and_at_the_threshold():
    assert uncertainty([0.9, 0.9], RULES) == (1.0, 0.0)  # a tie for first place
    assert uncertainty([0.5, 0.0], RULES)[0] == 1.0  # top score on the decision threshold
    confident, margin = uncertainty([0.99, 0.1], RULES)
    assert margin == pytest.approx(0.89) and confident == pytest.approx(1 - 0.49 / 0.5)
    assert uncertainty([1.0, 0.0], RULES)[0] == 0.0
    assert uncertainty([0.95, 0.9], RULES)[0] == pytest.approx(0.5)  # margin 0.05 = half of twice low_margin
    assert uncertainty([0.7], RULES) == (pytest.approx(0.6), None)  # one document: only the threshold part


def test_frequency_is_logarithmic_and_saturates():
    assert frequency(1, RULES) == 0.0
    assert frequency(10, RULES) == pytest.approx(0.5)
    assert frequency(100, RULES) == 1.0 and frequency(5000, RULES) == 1.0
    assert frequency(2, RULES) < frequency(3, RULES) < frequency(50, RULES)


def test_value_adds_the_three_parts():
    value = value_of([0.95, 0.9], 10, (0.25, "shadow-m"), RULES)
    assert value.total == pytest.approx(0.5 + 0.5 + 0.25)
    assert (value.uncertainty, value.frequency, value.disagreement) == (0.5, 0.5, 0.25)
    assert value.seen == 10 and value.shadow_model == "shadow-m" and value.top_score == 0.95
    assert value_of([0.95, 0.9], 1, None, RULES).disagreement == 0.0


def test_order_is_most_useful_first_then_newest():
    class Case:
        def __init__(self, id):
            self.id = id

    cases = [Case(1), Case(2), Case(3), Case(4)]
    values = {1: value_of([0.99, 0.1], 1, None, RULES),  # confident, seen once: least useful
              2: value_of([0.8, 0.8], 1, None, RULES),  # a tie
              3: value_of([0.99, 0.1], 10, None, RULES),  # confident but frequent
              4: value_of([0.8, 0.8], 1, None, RULES)}  # same value as 2 but newer
    assert [c.id for c in by_value(cases, values)] == [4, 2, 3, 1]


def add_request_case(session, query: str, scores: list[float], documents=None, instruction=None,
                     model: str = "m") -> tuple[str, int]:
    """A finished job for one request, with its scores, flagged through the worker's own code path."""
    job_id = str(uuid.uuid4())
    documents = documents or [f"doc {i} for {query}" for i in range(len(scores))]
    create_job(session, job_id=job_id, requests=[RerankRequest(query=query, documents=documents,
                                                               instruction=instruction)],
               model=model, queue="q", chunk_pairs=100)
    add_scores(session, job_id, scores, model, instruction=instruction)
    session.get(Job, job_id).status = "succeeded"
    flag_cases(session, job_id, lambda values: ["low_top_score"])
    session.flush()
    return job_id, session.query(LowConfidenceCase.id).filter_by(job_id=job_id).scalar() or 0


def add_scores(session, job_id: str, scores: list[float], model: str, revision: str = "r1",
               instruction=None) -> None:
    """Request 0's scores, stored as the worker stores them: packed in its one chunk, with a shared meta."""
    meta = ScoreMeta(model=model, model_revision=revision, score_type="p", instruction=instruction)
    chunk_id = session.scalar(select(JobChunk.id).where(JobChunk.job_id == job_id, JobChunk.request_idx == 0))
    session.add(ChunkScores(chunk_id=chunk_id, score_meta_id=meta_ids(session, [meta])[meta], scores=pack(scores)))
    session.flush()


def send(session, query: str, times: int) -> None:
    """Traffic only: `times` requests with this query (no case)."""
    for _ in range(times):
        create_job(session, job_id=str(uuid.uuid4()), requests=[RerankRequest(query=query, documents=["x"])],
                   model="m", queue="q", chunk_pairs=100)


def test_store_orders_by_value_with_repeats_and_shadow_disagreement(database_url):
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as session:
        _, confident = add_request_case(session, f"confident {tag}", [0.99, 0.1])
        _, frequent = add_request_case(session, f"frequent {tag}", [0.99, 0.1])
        send(session, f"  FREQUENT   {tag} ", 9)  # the same normalized query: 10 requests in all
        shadowed_job, shadowed = add_request_case(session, f"shadowed {tag}", [0.99, 0.5, 0.1])
        copy_id, _chunks = create_copy_job(session, [(shadowed_job, 0)], model="shadow-m", queue="q.shadow",
                                           purpose=SHADOW, chunk_pairs=100)
        add_scores(session, copy_id, [0.1, 0.5, 0.99], "shadow-m")  # the reverse order
        session.get(Job, copy_id).status = "succeeded"
        _, tie = add_request_case(session, f"tie {tag}", [0.8, 0.8])
    with session_scope(database_url) as session:
        query = CaseQuery(sort="value", text=tag, value_rules=RULES)
        cases, total = list_cases(session, query)
        assert total == 4
        # shadowed: confident (0.02) + reversed by the shadow (1.0); tie: 1.0 + 0; frequent: 0.02 + log(10)/log(100)
        assert [c.id for c in cases] == [shadowed, tie, frequent, confident]
        # The next case after reviewing goes down the same order and wraps round.
        assert next_open_case(session, query, session.get(LowConfidenceCase, tie)) == frequent
        assert next_open_case(session, query, session.get(LowConfidenceCase, confident)) == shadowed
        from store.review_value import case_values

        values = case_values(session, cases, RULES)
        assert values[frequent].seen == 10 and values[frequent].frequency == pytest.approx(0.5)
        assert values[shadowed].disagreement == 1.0 and values[shadowed].shadow_model == "shadow-m"
        assert values[confident].seen == 1 and values[confident].disagreement == 0.0
        # A shadow copy is not traffic: the shadowed query was seen once, though its copy has the same text.
        assert values[shadowed].seen == 1
        assert math.isclose(values[tie].total, 1.0 + frequency(1, RULES))


def test_identical_requests_collapse_into_one_case(database_url):
    tag = uuid.uuid4().hex[:8]
    documents = [f"first {tag}", f"second {tag}"]
    with session_scope(database_url) as session:
        first_job, case_id = add_request_case(session, f"Same Query {tag}", [0.3, 0.2], documents=documents)
        again_job, again = add_request_case(session, f"same   query {tag}", [0.3, 0.2],
                                            documents=list(reversed(documents)))  # same set, other order
        other_job, other = add_request_case(session, f"same query {tag}", [0.3, 0.2], documents=documents,
                                            instruction="another instruction")
    assert again == 0, "an identical request must not make a second case"
    assert other not in (0, case_id), "another instruction is another case"
    with session_scope(database_url) as session:
        assert repeat_counts(session, [case_id, other]) == {case_id: 2, other: 1}
        case = session.get(LowConfidenceCase, case_id)
        assert [r["job_id"] for r in repeat_jobs(session, case)] == [first_job, again_job]
        with session.begin_nested():  # the same job flagged again (a redelivery) adds nothing
            flag_cases(session, again_job, lambda values: ["low_top_score"])
        assert repeat_counts(session, [case_id]) == {case_id: 2}
        assert list_cases(session, CaseQuery(text=tag))[1] == 2
