"""Retention on real SQLite and PostgreSQL: expired jobs lose every job-owned row and become markers,
cases follow their own retention (reviewed ones only once exported), markers go last, dry runs count."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.settings import Settings
from store.db import session_scope
from store.document_text import hash_job_texts, text_hash
from store.drift import set_reference, window_sample
from store.jobs import get_job, job_view
from store.label_export import iter_jsonl
from store.retention import JOB_OWNED_TABLES, NOT_JOB_OWNED, rows_of_jobs
from store.retention_pass import RetentionPolicy, run_pass
from store.reviews import save_review
from store.tables import Base, DriftReference, Job, JobRequest, LowConfidenceCase, Review, ScoreMetaRow, utcnow
from tests.store.test_jobs_and_work import new_job, request, score_all

DAY = timedelta(days=1)
QUERIES = itertools.count()


def always(_scores):
    return ["low_top_score"]


def finished_job(url: str, age: timedelta, n_docs: int = 3, rule=None, **kwargs) -> str:
    """A job scored to the end whose finish (and creation) lies `age` in the past. Each job's query is its
    own, so identical requests do not collapse into one case (store/case_repeats.py)."""
    job_id = new_job(url, [request(n_docs, **kwargs).model_copy(update={"query": f"q {next(QUERIES)}"})],
                     chunk_pairs=2)
    score_all(url, job_id, (n_docs + 1) // 2, **({"rule": rule} if rule else {}))
    with session_scope(url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(finished_at=utcnow() - age,
                                                                   created_at=utcnow() - age))
        session.execute(update(LowConfidenceCase).where(LowConfidenceCase.job_id == job_id)
                        .values(created_at=utcnow() - age))
    return job_id


def client_rows(rows: dict[str, int]) -> list[int]:
    """The counts of the tables a client job has rows in (shadow_links belong to copies)."""
    return [count for name, count in rows.items() if name != "shadow_links"]


def owned_rows(url: str, job_id: str) -> dict[str, int]:
    with session_scope(url) as session:
        return {t.name: session.scalar(select(func.count()).select_from(t).where(rows_of_jobs(t, [job_id])))
                for t in JOB_OWNED_TABLES}


def test_finished_jobs_past_retention_lose_their_rows_and_become_markers(database_url):
    old = finished_job(database_url, 40 * DAY)
    recent = finished_job(database_url, 1 * DAY)
    active = new_job(database_url, [request(3)], chunk_pairs=2)  # created long ago, never finished
    with session_scope(database_url) as session:
        session.execute(update(Job).where(Job.id == active).values(created_at=utcnow() - 40 * DAY))
    assert all(client_rows(owned_rows(database_url, old)))

    report = run_pass(database_url, RetentionPolicy(jobs=30 * DAY))

    assert report.jobs == 1 and report.rows == {"chunk_scores": 2, "job_chunks": 2, "job_requests": 1}
    assert owned_rows(database_url, old) == {"chunk_scores": 0, "job_chunks": 0, "job_requests": 0, "shadow_links": 0}
    with session_scope(database_url) as session:
        assert get_job(session, old).expired_at is not None
        assert get_job(session, recent).expired_at is None and get_job(session, active).expired_at is None
        assert job_view(session, get_job(session, recent)).results[0].results  # untouched
    assert all(client_rows(owned_rows(database_url, recent))) and owned_rows(database_url, active)["job_chunks"] == 2
    assert run_pass(database_url, RetentionPolicy(jobs=30 * DAY)).jobs == 0  # nothing left to do


def test_every_table_is_job_owned_or_named_as_not_and_shared_score_metas_stay(database_url):
    """A table added to the schema must be placed: deleted with its job, or named with the reason it is kept.
    score_metas rows are shared by every job scored the same way (and cached by the workers): they stay,
    even once no job refers to them."""
    owned = {t.name for t in JOB_OWNED_TABLES}
    assert not owned & set(NOT_JOB_OWNED)
    assert owned | set(NOT_JOB_OWNED) == set(Base.metadata.tables)
    a, b = finished_job(database_url, 40 * DAY), finished_job(database_url, 40 * DAY)
    with session_scope(database_url) as session:
        metas = session.scalar(select(func.count()).select_from(ScoreMetaRow))
    assert metas == 1  # both jobs scored the same way: one shared row
    report = run_pass(database_url, RetentionPolicy(jobs=30 * DAY))
    assert report.jobs == 2 and owned_rows(database_url, a) == owned_rows(database_url, b) == {
        "chunk_scores": 0, "job_chunks": 0, "job_requests": 0, "shadow_links": 0}
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(ScoreMetaRow)) == metas
    fresh = finished_job(database_url, 1 * DAY)  # a worker's cached meta id still names a row
    with session_scope(database_url) as session:
        assert job_view(session, get_job(session, fresh)).results[0].results[0].relevance_score is not None


def test_a_job_finished_within_the_settle_time_is_kept_whatever_the_age_asked(database_url):
    job_id = finished_job(database_url, timedelta(seconds=5))
    assert run_pass(database_url, RetentionPolicy(jobs=timedelta(0), settle=timedelta(seconds=60))).jobs == 0
    assert run_pass(database_url, RetentionPolicy(jobs=timedelta(0), settle=timedelta(seconds=1))).jobs == 1
    with session_scope(database_url) as session:
        assert get_job(session, job_id).expired_at is not None


def test_dry_run_counts_what_a_pass_then_deletes(database_url):
    for _ in range(3):
        finished_job(database_url, 40 * DAY, rule=always)
    policy = RetentionPolicy(jobs=30 * DAY, cases=30 * DAY)
    dry = run_pass(database_url, policy, dry_run=True)
    assert (dry.jobs, dry.rows, dry.cases) == (3, {"chunk_scores": 6, "job_chunks": 6, "job_requests": 3}, 3)
    assert run_pass(database_url, policy, dry_run=True).lines() == dry.lines()  # it deleted nothing
    real = run_pass(database_url, policy)
    assert (real.jobs, real.rows, real.cases) == (dry.jobs, dry.rows, dry.cases)


def test_deletes_in_batches_and_stops_when_told(database_url):
    for _ in range(5):
        finished_job(database_url, 40 * DAY, n_docs=1)
    calls = []

    def between() -> bool:
        calls.append(1)
        return len(calls) < 2  # stop after the second batch

    report = run_pass(database_url, RetentionPolicy(jobs=30 * DAY, batch=2), between_batches=between)
    assert report.jobs == 4 and len(calls) == 2
    assert run_pass(database_url, RetentionPolicy(jobs=30 * DAY, batch=2)).jobs == 1


def review(url: str, case_id: int, decision: str = "reviewed") -> None:
    with session_scope(url) as session:
        case = session.get(LowConfidenceCase, case_id)
        save_review(session, case, reviewer="r1", reviewer_name="R", labels={0: 3, 1: 0} if decision == "reviewed"
                    else {}, best_index=None, note=None, decision=decision)


def case_of(url: str, job_id: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(LowConfidenceCase.id).where(LowConfidenceCase.job_id == job_id))


def case_ids(url: str) -> set[int]:
    with session_scope(url) as session:
        return set(session.scalars(select(LowConfidenceCase.id)))


def test_cases_outlive_their_job_by_default_and_keep_the_job_marker(database_url):
    job_id = finished_job(database_url, 400 * DAY, rule=always)
    case_id = case_of(database_url, job_id)
    policy = RetentionPolicy.from_settings(Settings(database_url=database_url), settle=timedelta(0))
    assert policy.cases is None  # RERANKQ_CASE_RETENTION_DAYS defaults to keeping cases
    with session_scope(database_url) as session:  # the marker itself is older than RERANKQ_EXPIRED_MARKER_DAYS
        session.execute(update(Job).where(Job.id == job_id).values(expired_at=utcnow() - 400 * DAY))
    report = run_pass(database_url, policy)
    assert report.jobs == 0 and report.markers == 0 and report.cases == 0
    assert case_ids(database_url) == {case_id}
    with session_scope(database_url) as session:
        assert get_job(session, job_id) is not None  # kept for the case's tenant and link


def test_reviewed_cases_are_kept_until_an_export_has_them_unless_forced(database_url):
    open_case, dismissed, reviewed, exported = (case_of(database_url, finished_job(database_url, 40 * DAY,
                                                                                   rule=always)) for _ in range(4))
    young = case_of(database_url, finished_job(database_url, 1 * DAY, rule=always))
    review(database_url, dismissed, "dismissed")
    review(database_url, reviewed)
    review(database_url, exported)
    with session_scope(database_url) as session:  # only `exported` was in a finished export
        session.execute(update(LowConfidenceCase).where(LowConfidenceCase.id == exported).values(exported_at=utcnow()))

    report = run_pass(database_url, RetentionPolicy(cases=30 * DAY))
    assert report.cases == 3 and report.reviews == 2 and report.unexported_kept == 1
    assert case_ids(database_url) == {reviewed, young}
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Review).where(Review.case_id == reviewed)) == 1
    assert open_case not in case_ids(database_url)

    forced = run_pass(database_url, RetentionPolicy(cases=30 * DAY, force=True))
    assert forced.cases == 1 and forced.reviews == 1 and case_ids(database_url) == {young}


def test_a_finished_export_marks_its_cases_and_a_new_review_unmarks_them(database_url):
    case_id = case_of(database_url, finished_job(database_url, 40 * DAY, rule=always))
    review(database_url, case_id)
    aborted = iter_jsonl(database_url, "pairs")
    next(aborted)
    aborted.close()  # a reader that went away: not an export
    assert run_pass(database_url, RetentionPolicy(cases=30 * DAY)).unexported_kept == 1

    assert len(list(iter_jsonl(database_url, "pairs"))) == 2
    review(database_url, case_id)  # labels changed after the export
    assert run_pass(database_url, RetentionPolicy(cases=30 * DAY)).cases == 0

    assert len(list(iter_jsonl(database_url, "graded"))) == 2
    assert run_pass(database_url, RetentionPolicy(cases=30 * DAY)).cases == 1
    assert case_ids(database_url) == set()


def test_markers_go_after_their_own_age_once_no_case_refers_to_them(database_url):
    plain = finished_job(database_url, 40 * DAY)
    flagged = finished_job(database_url, 40 * DAY, rule=always)
    assert run_pass(database_url, RetentionPolicy(jobs=30 * DAY, markers=10 * DAY)).jobs == 2
    with session_scope(database_url) as session:
        session.execute(update(Job).where(Job.id.in_([plain, flagged])).values(expired_at=utcnow() - 11 * DAY))
    report = run_pass(database_url, RetentionPolicy(jobs=30 * DAY, markers=10 * DAY))
    assert report.markers == 1
    with session_scope(database_url) as session:
        assert get_job(session, plain) is None and get_job(session, flagged) is not None
    assert run_pass(database_url, RetentionPolicy(cases=30 * DAY, markers=10 * DAY)).markers == 1  # case gone, then job
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_hashing_keeps_no_text_of_unflagged_requests_but_keeps_flagged_ones(database_url):
    def flag_first_only(scores):
        return ["low_top_score"] if len(scores) == 3 else []

    job_id = new_job(database_url, [request(3, return_documents=True), request(2, return_documents=True)],
                     chunk_pairs=2)
    score_all(database_url, job_id, 3, rule=flag_first_only)
    with session_scope(database_url) as session:
        assert hash_job_texts(session, [job_id]) == 1
        assert hash_job_texts(session, [job_id]) == 0  # once
    with session_scope(database_url) as session:
        flagged, plain = session.scalars(select(JobRequest).where(JobRequest.job_id == job_id)
                                         .order_by(JobRequest.request_idx))
        assert flagged.query == "q" and flagged.documents == ["doc 0", "doc 1", "doc 2"] and not flagged.text_hashed
        assert plain.query == text_hash("q") and plain.documents == [text_hash("doc 0"), text_hash("doc 1")]
        view = job_view(session, get_job(session, job_id))
    assert [r.document.text for r in view.results[0].results] == ["doc 1", "doc 0", "doc 2"]
    assert [r.document for r in view.results[1].results] == [None, None]  # scores stay, texts do not
    assert [r.index for r in view.results[1].results] == [1, 0]


def test_jobs_a_drift_reference_samples_are_kept_and_drift_references_are_never_deleted(database_url):
    """drift_references (migration 0010) are model-level, not job-owned; the reference window's sampled jobs
    stay past retention (the model's baseline), the newest RERANKQ_DRIFT_MAX_JOBS of them, unless forced."""
    assert "drift_references" not in {t.name for t in JOB_OWNED_TABLES}
    in_window = [finished_job(database_url, age * DAY) for age in (41, 42, 43)]  # newest first
    outside = finished_job(database_url, 50 * DAY)
    now = utcnow()
    with session_scope(database_url) as session:
        set_reference(session, "m", "r1", now - 45 * DAY, now - 40 * DAY, pinned=True)

    policy = RetentionPolicy.from_settings(Settings(database_url=database_url, drift_max_jobs=2),
                                           settle=timedelta(0))
    assert policy.drift_jobs == 2
    dry = run_pass(database_url, policy, dry_run=True)
    assert (dry.jobs, dry.drift_kept) == (2, 2) and any("drift reference" in line for line in dry.lines())
    report = run_pass(database_url, policy)
    assert (report.jobs, report.drift_kept) == (2, 2)
    with session_scope(database_url) as session:
        assert [get_job(session, j).expired_at is None for j in in_window + [outside]] == [True, True, False, False]
        assert session.get(DriftReference, "m") is not None
        sample = window_sample(session, "m", now - 45 * DAY, now - 40 * DAY, "r1", max_jobs=2)
    assert len(sample.scores) == 6  # the baseline still has both jobs' scores

    forced = run_pass(database_url, RetentionPolicy.from_settings(Settings(database_url=database_url),
                                                                  settle=timedelta(0), drift_jobs=0))
    assert (forced.jobs, forced.drift_kept) == (2, 0)
    with session_scope(database_url) as session:
        assert session.get(DriftReference, "m") is not None  # the model's row outlives every job
        assert window_sample(session, "m", now - 45 * DAY, now - 40 * DAY, "r1").scores == []


@pytest.mark.parametrize("group_commit", [True, False])
def test_a_finished_job_is_hashed_by_the_worker_hook_through_either_save_path(database_url, group_commit):
    """hash_texts_now runs where a worker tells a job's waiters: through the process's group committer
    (RERANKQ_STORE_GROUP_COMMIT, as the saves) or in its own transaction; only a finished job is hashed."""
    from types import SimpleNamespace

    from workers.retention_sweep import hash_texts_now

    settings = Settings(database_url=database_url, keep_document_text=False, store_group_commit=group_commit)
    runtime = SimpleNamespace(settings=settings)
    unfinished = new_job(database_url, [request(2)], chunk_pairs=2)
    finished = new_job(database_url, [request(2)], chunk_pairs=2)
    score_all(database_url, finished, 1)
    for job_id in (unfinished, finished):
        hash_texts_now(runtime, job_id)
    with session_scope(database_url) as session:
        texts = {r.job_id: (r.text_hashed, r.query) for r in session.scalars(select(JobRequest))}
        assert get_job(session, finished).texts_hashed_at is not None
        assert get_job(session, unfinished).texts_hashed_at is None
    assert texts == {finished: (True, text_hash("q")), unfinished: (False, "q")}
    hash_texts_now(SimpleNamespace(settings=Settings(database_url=database_url)), unfinished)  # kept by default


def test_shadow_and_rescore_copies_take_texts_from_the_case_once_the_request_is_hashed_or_expired(database_url):
    """A copy of hashes would score garbage: a hashed or expired request is copied from its case (which keeps
    its texts), and one with no case is left out."""
    from store.rescore import cases_to_rescore, create_rescore_jobs
    from store.shadow_jobs import RESCORE, SHADOW, create_copy_job

    flagged = finished_job(database_url, 40 * DAY, rule=always)
    plain = finished_job(database_url, 40 * DAY)
    with session_scope(database_url) as session:
        hash_job_texts(session, [flagged, plain])
        copy_id, _ = create_copy_job(session, [(plain, 0)], model="cand", queue="q", purpose=SHADOW, chunk_pairs=2)
    assert copy_id == ""  # only hashes left, and no case: nothing to copy

    assert run_pass(database_url, RetentionPolicy(jobs=30 * DAY)).jobs == 2  # the job rows go, the case stays
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(JobRequest).where(JobRequest.job_id == flagged)) == 0
        sources = cases_to_rescore(session, "cand", "open")
        assert sources == [(flagged, 0)]
        [(rescore_id, chunks)] = create_rescore_jobs(session, sources + [(plain, 0)], model="cand", queue="q",
                                                     chunk_pairs=2, requests_per_job=10)
        copied = session.scalars(select(JobRequest).where(JobRequest.job_id == rescore_id)).one()
        case = session.get(LowConfidenceCase, case_of(database_url, flagged))
        assert (copied.query, copied.instruction) == (case.query, case.instruction)
        assert copied.documents == ["doc 0", "doc 1", "doc 2"] and len(chunks) == 2
        assert session.get(Job, rescore_id).kind == RESCORE
        assert cases_to_rescore(session, "cand", "open") == []  # its link names the expired job's marker


def test_markers_stay_while_a_case_repeat_or_a_shadow_link_refers_to_them_and_repeats_go_with_their_case(
        database_url):
    from store.shadow_jobs import SHADOW, create_copy_job
    from store.tables import CaseRepeat, ShadowLink

    flagged = finished_job(database_url, 40 * DAY, rule=always)
    repeat = finished_job(database_url, 40 * DAY)
    source = finished_job(database_url, 40 * DAY)
    plain = finished_job(database_url, 40 * DAY)
    with session_scope(database_url) as session:
        session.add(CaseRepeat(case_id=case_of(database_url, flagged), job_id=repeat, request_idx=0))
        copy_id, _ = create_copy_job(session, [(source, 0)], model="cand", queue="q", purpose=SHADOW, chunk_pairs=2)
    assert copy_id  # queued: not finished, so not expired
    policy = RetentionPolicy(jobs=30 * DAY, markers=10 * DAY)
    assert run_pass(database_url, policy).jobs == 4
    with session_scope(database_url) as session:
        session.execute(update(Job).where(Job.expired_at.is_not(None)).values(expired_at=utcnow() - 11 * DAY))
    assert run_pass(database_url, policy).markers == 1  # only `plain`: nothing refers to it
    with session_scope(database_url) as session:
        assert [get_job(session, j) is not None for j in (flagged, repeat, source, plain)] == [True, True, True, False]
        assert session.scalar(select(func.count()).select_from(ShadowLink)) == 1

    report = run_pass(database_url, RetentionPolicy(cases=30 * DAY, markers=10 * DAY))
    assert (report.cases, report.repeats) == (1, 1) and report.markers == 2  # the case, then flagged and repeat
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(CaseRepeat)) == 0
        assert get_job(session, source) is not None  # the live copy's link still names it
