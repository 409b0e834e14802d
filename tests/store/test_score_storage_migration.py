"""Migration 0006 converts a store's per-document scores into packed chunk scores: the jobs read
back the same (ranking, metas, degraded flag, progress), and a downgrade restores the rows."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import text, update

from rerankq.schemas import JobStatus, RerankRequest
from store.db import get_engine, session_scope
from store.job_details import job_detail
from store.jobs import create_job, get_job, job_view
from store.migrate import alembic_config, upgrade
from store.tables import Job, JobChunk

OLD_ROW = ("INSERT INTO scores (job_id, request_idx, doc_index, score, model, model_revision, score_type, instruction,"
           " degraded, created_at) VALUES (:job, :req, :doc, :score, :model, :rev, :type, :inst, :degraded, :at)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request, tmp_path) -> str:
    """A store at revision 0005, before scores were packed."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_cluster").create_database(f"m_{uuid.uuid4().hex[:12]}")
    upgrade(url, "0005")
    return url


def old_job(url: str, documents: list[list[str]], scored: dict[int, list[tuple]], finished: bool) -> str:
    """A job written by the old code: chunks of 2 documents; `scored` maps a chunk index to its
    (score, model, degraded) per document, written as old per-document rows."""
    job_id = str(uuid.uuid4())
    with session_scope(url) as session:
        _job, plans = create_job(session, job_id=job_id, model="m", queue="q", chunk_pairs=2,
                                 requests=[RerankRequest(query=f"q{i}", documents=docs, instruction="Judge")
                                           for i, docs in enumerate(documents)])
        for plan in plans:
            for offset, (score, model, degraded) in enumerate(scored.get(plan.chunk_idx, [])):
                session.execute(text(OLD_ROW), dict(
                    job=job_id, req=plan.request_idx, doc=plan.doc_start + offset, score=score, model=model,
                    rev="r1", type="p-yes", inst=None if degraded else "Judge", degraded=degraded,
                    at="2026-12-01 10:00:00"))
            if plan.chunk_idx in scored:
                session.execute(update(JobChunk).where(JobChunk.job_id == job_id, JobChunk.chunk_idx == plan.chunk_idx)
                                .values(status="done"))
        status = JobStatus.succeeded.value if finished else JobStatus.running.value
        session.execute(update(Job).where(Job.id == job_id).values(status=status))
    return job_id


def read(url: str, job_id: str):
    with session_scope(url) as session:
        view = job_view(session, get_job(session, job_id))
        detail = job_detail(session, job_id)
        return view.model_dump(mode="json"), [
            ([(d.index, d.rank, d.score) for d in r.documents], r.meta) for r in detail.requests]


def test_upgrade_converts_old_scores_and_downgrade_restores_them(old_store):
    done = old_job(old_store, [["a", "b", "c"], ["d"]], {
        0: [(0.25, "m", False), (0.75, "m", False)], 1: [(0.5, "m", False)],
        2: [(0.125, "fallback-embed", True)]}, finished=True)
    running = old_job(old_store, [["a", "b", "c"]], {0: [(0.5, "m", False), (0.0625, "m", False)]}, finished=False)

    upgrade(old_store)  # head: 0006 converts, then drops the old table
    view, detail = read(old_store, done)
    assert view["status"] == "succeeded" and view["progress"] == {"done": 4, "total": 4}
    first, second = view["results"]
    assert [(r["index"], r["relevance_score"]) for r in first["results"]] == [(1, 0.75), (2, 0.5), (0, 0.25)]
    assert first["meta"]["model"] == "m" and first["meta"]["instruction"] == "Judge" and not first["meta"]["degraded"]
    assert first["meta"]["model_revision"] == "r1" and first["meta"]["score_type"] == "p-yes"
    assert second["meta"]["model"] == "fallback-embed" and second["meta"]["degraded"] is True
    assert second["results"][0]["degraded"] is True
    assert detail[0][0] == [(1, 1, 0.75), (2, 2, 0.5), (0, 3, 0.25)]
    running_view, running_detail = read(old_store, running)
    assert running_view["progress"] == {"done": 2, "total": 3}
    assert running_detail[0][0] == [(0, 1, 0.5), (1, 2, 0.0625), (2, 3, None)]
    with get_engine(old_store).connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM chunk_scores")) == 4
        assert connection.scalar(text("SELECT count(*) FROM score_metas")) == 2  # one per way of scoring

    command.downgrade(alembic_config(old_store), "0005")
    with get_engine(old_store).connect() as connection:
        rows = connection.execute(text("SELECT job_id, request_idx, doc_index, score, model, instruction, degraded "
                                       "FROM scores ORDER BY job_id = :done DESC, request_idx, doc_index"),
                                  {"done": done}).all()
    assert [(r.request_idx, r.doc_index, r.score, r.model, r.instruction, bool(r.degraded)) for r in rows[:4]] == [
        (0, 0, 0.25, "m", "Judge", False), (0, 1, 0.75, "m", "Judge", False), (0, 2, 0.5, "m", "Judge", False),
        (1, 0, 0.125, "fallback-embed", None, True)]
    assert len(rows) == 6
