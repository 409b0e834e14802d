"""The review store on SQLite and PostgreSQL: filters, order, pages, tenants, saving reviews,
the next case, and the export's label rules."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.label_export import case_lines, combine, iter_export
from core.stats import percentile
from store.review_stats import overview, score_histogram
from store.reviews import (
    CaseQuery,
    ReviewInputError,
    case_reviews,
    check_review,
    facets,
    get_case,
    list_cases,
    model_order,
    next_open_case,
    reviewer_for,
    save_review,
    status_counts,
)
from store.packed_scores import ScoreMeta, meta_ids, pack
from store.tables import ChunkScores, JobChunk, LowConfidenceCase, utcnow


def add_case(url: str, query: str, scores: list[float], reasons=("low_top_score",), owner=None, model="m",
             instruction=None, age=timedelta(0)) -> int:
    job_id = str(uuid.uuid4())
    documents = [f"doc {i} of {query}" for i in range(len(scores))]
    with session_scope(url) as session:
        _job, _plans = create_job(session, job_id=job_id, requests=[RerankRequest(query=query, documents=documents)],
                                  model=model, queue="q", chunk_pairs=100, owner=owner)
        meta = ScoreMeta(model=model, model_revision="r1", score_type="p", instruction=instruction)
        chunk_id = session.scalar(select(JobChunk.id).where(JobChunk.job_id == job_id))
        session.add(ChunkScores(chunk_id=chunk_id, score_meta_id=meta_ids(session, [meta])[meta], scores=pack(scores)))
        case = LowConfidenceCase(job_id=job_id, request_idx=0, reasons=list(reasons), reason=reasons[0], query=query,
                                 instruction=instruction, documents=documents, scores=scores, top_score=max(scores),
                                 model=model, model_revision="r1", score_type="p", created_at=utcnow() - age)
        session.add(case)
        session.flush()
        return case.id


def ids(url: str, **filters) -> list[int]:
    with session_scope(url) as session:
        return [c.id for c in list_cases(session, CaseQuery(**filters))[0]]


def test_model_order_breaks_ties_by_index():
    assert model_order([0.2, 0.9, 0.2, 0.9]) == [1, 3, 0, 2]
    assert model_order([0.5]) == [0]


def test_filters_sort_and_pages(database_url):
    old = add_case(database_url, "old 100% match_here", [0.3, 0.1], age=timedelta(days=3))
    margin = add_case(database_url, "second reason", [0.2, 0.19], reasons=("low_top_score", "small_margin"),
                      model="other", instruction="Find it")
    high = add_case(database_url, "high one", [0.45, 0.0])
    assert ids(database_url) == [high, margin, old]
    assert ids(database_url, sort="oldest") == [old, margin, high]
    assert ids(database_url, sort="lowest") == [margin, old, high]
    assert ids(database_url, reason="small_margin") == [margin]  # any reason, not only the first
    assert ids(database_url, model="other") == [margin]
    assert ids(database_url, text="100%") == [old]  # LIKE wildcards are literal
    assert ids(database_url, text="match_") == [old] and ids(database_url, text="h_gh") == []
    assert ids(database_url, text="FIND") == [margin]  # instruction, any case
    assert ids(database_url, since=date.today() - timedelta(days=1)) == [high, margin]
    assert ids(database_url, until=date.today() - timedelta(days=2)) == [old]
    assert ids(database_url, page=2, page_size=2) == [old]
    with session_scope(database_url) as session:
        assert list_cases(session, CaseQuery(page_size=1))[1] == 3


def test_facets_list_every_reason_and_model(database_url):
    add_case(database_url, "a", [0.1], reasons=("low_top_score", "small_margin"), model="m1")
    add_case(database_url, "b", [0.1], reasons=("flat_scores",), model="m2", owner="acme")
    with session_scope(database_url) as session:
        assert facets(session) == (["flat_scores", "low_top_score", "small_margin"], ["m1", "m2"])
        assert facets(session, owner="acme") == (["flat_scores"], ["m2"])


def test_tenants_see_only_their_cases(database_url):
    mine = add_case(database_url, "mine", [0.1], owner="acme")
    theirs = add_case(database_url, "theirs", [0.1], owner="globex")
    assert ids(database_url, owner="acme") == [mine]
    assert set(ids(database_url)) == {mine, theirs}
    with session_scope(database_url) as session:
        assert get_case(session, theirs, owner="acme") is None
        assert get_case(session, theirs, owner=None).id == theirs


def test_check_review_rules():
    assert check_review(3, {0: 3, 2: 0}, None, "reviewed") == {0: 3, 2: 0}
    assert check_review(3, {}, 1, "reviewed") == {1: 3}  # the best answer counts as perfect
    assert check_review(1, {}, None, "dismissed") == {}
    for labels, best, field in (({3: 1}, None, "labels.3"), ({0: 4}, None, "labels.0"), ({0: -1}, None, "labels.0"),
                                ({0: 1}, 0, "best_index"), ({}, 5, "best_index"), ({}, None, "labels")):
        with pytest.raises(ReviewInputError) as error:
            check_review(3, labels, best, "reviewed")
        assert error.value.field == field


def test_saving_again_replaces_and_status_follows(database_url):
    case_id = add_case(database_url, "q", [0.2, 0.1])
    with session_scope(database_url) as session:
        case = get_case(session, case_id)
        save_review(session, case, reviewer="k1", reviewer_name="ann", labels={0: 1}, best_index=None, note=" ",
                    decision="dismissed")
        assert case.status == "dismissed"
        save_review(session, case, reviewer="k2", reviewer_name="ben", labels={0: 3, 1: 0}, best_index=0,
                    note="x", decision="reviewed")
        assert case.status == "reviewed"
        save_review(session, case, reviewer="k1", reviewer_name="ann", labels={0: 2}, best_index=None, note=None,
                    decision="reviewed")
    with session_scope(database_url) as session:
        reviews = case_reviews(session, case_id)
        assert [(r.reviewer, r.labels, r.decision) for r in reviews] == [("k1", {"0": 2}, "reviewed"),
                                                                        ("k2", {"0": 3, "1": 0}, "reviewed")]
        assert reviews[0].note is None
        assert status_counts(session, CaseQuery(status=None))["reviewed"] == 1


def test_next_open_case_follows_the_queue_and_wraps(database_url):
    a = add_case(database_url, "a", [0.1], age=timedelta(minutes=3))
    b = add_case(database_url, "b", [0.1], age=timedelta(minutes=2))
    c = add_case(database_url, "c", [0.1], age=timedelta(minutes=1))
    query = CaseQuery(sort="oldest")
    with session_scope(database_url) as session:
        case = {i: get_case(session, i) for i in (a, b, c)}
        assert next_open_case(session, query, case[a]) == b
        assert next_open_case(session, query, case[b]) == c
        assert next_open_case(session, query, case[c]) == a  # wraps round: a skipped case comes back
        assert next_open_case(session, CaseQuery(), case[b]) == a  # newest first
        save_review(session, case[a], reviewer="k", reviewer_name="k", labels={0: 0}, best_index=None, note=None,
                    decision="reviewed")
        assert next_open_case(session, query, case[c]) == b
        assert next_open_case(session, CaseQuery(sort="oldest", text="zzz"), case[c]) is None


def test_reviewer_identity():
    assert reviewer_for(None, "anonymous") == ("anonymous", "anonymous")
    assert reviewer_for(None, "anonymous", "ann") == ("ann", "ann")
    assert reviewer_for("k1", "bot") == ("k1", "bot")
    assert reviewer_for("k1", "bot", "ann") == ("k1/ann", "ann")  # a key can never write as another key


@pytest.mark.parametrize("grades, expected", [
    ([3], (3, 1, 1.0)),
    ([0, 0, 3], (0, 0, 0.6667)),
    ([2, 2, 0], (2, 1, 0.6667)),
    ([2, 1], (1, 0, 0.5)),  # tie: mean 1.5 < 2, so not relevant
    ([3, 1], (3, 1, 0.5)),  # tie: mean 2, relevant
    ([1, 1, 0, 0], (0, 0, 1.0)),
])
def test_combining_grades(grades, expected):
    assert combine(grades) == expected


def test_export_lines_per_format(database_url):
    case_id = add_case(database_url, "export me", [0.1, 0.3, 0.2], instruction="Judge")
    other = add_case(database_url, "no relevant doc", [0.1, 0.2])
    with session_scope(database_url) as session:
        case = get_case(session, case_id)
        save_review(session, case, reviewer="a", reviewer_name="a", labels={0: 3, 1: 0, 2: 2}, best_index=2,
                    note=None, decision="reviewed")
        save_review(session, get_case(session, other), reviewer="a", reviewer_name="a", labels={0: 0, 1: 1},
                    best_index=None, note=None, decision="reviewed")
    with session_scope(database_url) as session:
        pairs = list(iter_export(session, "pairs"))
        groups = list(iter_export(session, "groups"))
        graded = case_lines(get_case(session, case_id), case_reviews(session, case_id), "graded")
    mine = [p for p in pairs if p["case_id"] == case_id]
    assert [p["doc_index"] for p in mine] == [1, 2, 0]  # model order
    assert [p["label"] for p in mine] == [0, 1, 1] and mine[0]["instruction"] == "Judge"
    assert [g["grade"] for g in graded] == [0, 2, 3]
    assert [g["case_id"] for g in groups] == [case_id], "a group without a relevant document is left out"
    assert groups[0]["pos"] == ["doc 2 of export me", "doc 0 of export me"]  # the best answer first
    assert groups[0]["neg"] == ["doc 1 of export me"]
    with pytest.raises(ValueError, match="csv"):
        list(iter_export(session, "csv"))


def test_overview_counts_cases_jobs_and_backlog(database_url):
    first = add_case(database_url, "one", [0.1, 0.9])
    add_case(database_url, "two", [0.4])
    with session_scope(database_url) as session:
        save_review(session, get_case(session, first), reviewer="a", reviewer_name="a", labels={0: 0},
                    best_index=None, note=None, decision="reviewed")
        stats = overview(session, "24h")
        bins, n = score_histogram(session)
    assert sum(stats.cases) == 2 and sum(stats.closed) == 1 and stats.backlog[-1] == 1
    assert sum(stats.jobs) == 2 and stats.requests == [0] * len(stats.buckets)  # jobs never ran: nothing scored
    assert stats.status_counts == {"open": 1, "reviewed": 1} and dict(stats.open_by_reason) == {"low_top_score": 1}
    assert n == 3 and sum(count for _lo, _hi, count in bins) == 3 and bins[0][0] == 0.0 and bins[-1][1] == 1.0
    assert percentile([], 95) is None and percentile([1, 2, 3, 4], 50) == 2 and percentile([5], 95) == 5
    assert percentile(list(range(1, 21)), 95) == 19 and percentile(list(range(1, 21)), 100) == 20
