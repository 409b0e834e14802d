"""Paired requests on SQLite and PostgreSQL: a request's own scores, its shadow copy and its rescore
with another revision; `name@revision`; reviewers' grades attached through a case or its repeat."""

from __future__ import annotations

import uuid

import pytest
from scipy.stats import kendalltau

from core.model_comparison import compare
from store.db import session_scope
from store.model_compare import paired_requests, split_spec
from store.reviews import save_review
from store.shadow_jobs import RESCORE, SHADOW, create_copy_job
from store.tables import Job, LowConfidenceCase
from tests.store.test_review_value import add_request_case, add_scores
from core.confidence_rules import ConfidenceRules

RULES = ConfidenceRules(0.5, 0.05, 0.05, 0.7, 0.0)


def copy(session, job_id: str, model: str, scores: list[float], purpose: str, revision: str) -> str:
    copy_id, _chunks = create_copy_job(session, [(job_id, 0)], model=model, queue="q", purpose=purpose,
                                       chunk_pairs=100)
    add_scores(session, copy_id, scores, model, revision=revision)
    job = session.get(Job, copy_id)
    job.status, job.finished_at = "succeeded", job.created_at
    return copy_id


def test_split_spec():
    assert split_spec("org/m@abc") == ("org/m", "abc") and split_spec("org/m") == ("org/m", None)
    assert split_spec("@x") == ("@x", None) and split_spec("m@") == ("m", None)


def test_pairs_per_revision_and_labels_through_repeats(database_url):
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as session:
        first, case_id = add_request_case(session, f"q {tag}", [0.9, 0.2, 0.4], documents=["a", "b", "c"])
        repeat, _ = add_request_case(session, f"q {tag}", [0.9, 0.2, 0.4], documents=["a", "b", "c"])
        other, _ = add_request_case(session, f"other {tag}", [0.1, 0.3], documents=["x", "y"])
        for job_id in (first, repeat, other):
            session.get(Job, job_id).finished_at = session.get(Job, job_id).created_at
        copy(session, repeat, "cand", [0.1, 0.8, 0.5], SHADOW, "r1")
        copy(session, other, "cand", [0.2, 0.1], SHADOW, "r1")
        copy(session, repeat, "cand", [0.9, 0.1, 0.5], RESCORE, "r2")
        session.flush()
        save_review(session, session.get(LowConfidenceCase, case_id), reviewer="r", reviewer_name="r",
                    labels={0: 3, 1: 0, 2: 1}, best_index=None, note=None, decision="reviewed")
    with session_scope(database_url) as session:
        latest = paired_requests(session, "m", "cand")
        assert [(p.key[0], p.candidate.revision) for p in latest] == [(repeat, "r2"), (other, "r1")]
        assert latest[0].case_id == case_id and latest[0].grades == {0: 3, 1: 0, 2: 1}
        assert latest[1].grades == {}
        old = paired_requests(session, "m", "cand@r1")
        assert [p.candidate.scores for p in old] == [pytest.approx([0.1, 0.8, 0.5]), pytest.approx([0.2, 0.1])]  # float32
        both = paired_requests(session, "cand@r1", "cand@r2")
        assert [p.key[0] for p in both] == [repeat]
        assert paired_requests(session, "m", "cand", limit=1)[0].key[0] == other
        result = compare(old, "m", "cand@r1", RULES)
    assert result.n_requests == 2 and result.top1_agreement == 0.0
    assert result.mean_kendall_tau == pytest.approx((kendalltau([0.9, 0.2, 0.4], [0.1, 0.8, 0.5]).statistic
                                                     + kendalltau([0.1, 0.3], [0.2, 0.1]).statistic) / 2)
    assert result.baseline.n_reviewed == 1 and result.baseline.ndcg_at_10 == pytest.approx(1.0)
    assert result.candidate.ndcg_at_10 < 1.0
    assert result.baseline.low_confidence_rate == 0.5  # 0.3 top score is flagged, 0.9 with a wide margin is not


def test_overview_counts_client_jobs_and_scores_not_shadow_copies(database_url):
    from store.review_stats import overview, score_histogram

    with session_scope(database_url) as session:
        job_id, _case = add_request_case(session, f"traffic {uuid.uuid4().hex[:8]}", [0.2, 0.1])
        copy(session, job_id, "cand", [0.3, 0.4], SHADOW, "r1")
        copy(session, job_id, "cand", [0.3, 0.4], RESCORE, "r1")
        stats = overview(session, "24h")
        _bins, n_scores = score_histogram(session)
    assert sum(stats.jobs) == 1
    assert n_scores == 2  # the client job's two scores, not its copies' four


def test_rescore_picks_cases_by_status_and_day_once_per_model(database_url):
    from datetime import timedelta

    from store.rescore import cases_to_rescore, create_rescore_jobs
    from store.tables import utcnow

    with session_scope(database_url) as session:
        old_job, old_case = add_request_case(session, f"old {uuid.uuid4().hex[:8]}", [0.2, 0.1])
        new_job, new_case = add_request_case(session, f"new {uuid.uuid4().hex[:8]}", [0.2, 0.1])
        open_job, _ = add_request_case(session, f"open {uuid.uuid4().hex[:8]}", [0.2, 0.1])
        session.get(LowConfidenceCase, old_case).created_at = utcnow() - timedelta(days=3)
        for case_id in (old_case, new_case):
            session.get(LowConfidenceCase, case_id).status = "reviewed"
        session.flush()
        assert cases_to_rescore(session, "cand", "reviewed") == [(old_job, 0), (new_job, 0)]
        assert cases_to_rescore(session, "cand", "reviewed", since=(utcnow() - timedelta(days=1)).date()) \
            == [(new_job, 0)]
        assert cases_to_rescore(session, "cand", "open") == [(open_job, 0)]
        jobs = create_rescore_jobs(session, cases_to_rescore(session, "cand", "reviewed"), model="cand",
                                   queue="rerankq.cand.shadow", chunk_pairs=1, requests_per_job=1)
        assert [len(chunks) for _job, chunks in jobs] == [2, 2]  # one request per job, one pair per chunk
        assert all(session.get(Job, job_id).kind == "rescore" for job_id, _ in jobs)
        assert cases_to_rescore(session, "cand", "reviewed") == []  # already rescored by cand
        assert cases_to_rescore(session, "other", "reviewed") == [(old_job, 0), (new_job, 0)]
