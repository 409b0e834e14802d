"""Scores take under 100 bytes a pair, indexes included, on SQLite and PostgreSQL (a size bound:
issue 11 measured about 580 bytes a pair with one row per document)."""

from __future__ import annotations

from sqlalchemy import func, select

from store.db import session_scope
from store.tables import ChunkScores, JobChunk, ScoreMetaRow
from tests.store.bench_store_size import measure, store_pairs


def test_scores_take_under_100_bytes_a_pair_with_their_indexes(database_url):
    # 10-document requests, one job each (the interactive shape, the costliest per pair).
    pairs = store_pairs(database_url, 20_000, docs=10)
    report = measure(database_url, pairs)
    print(report.line(database_url.split(":")[0]))
    with session_scope(database_url) as session:
        assert session.scalar(select(func.count()).select_from(JobChunk).where(JobChunk.status != "done")) == 0
        assert session.scalar(select(func.count()).select_from(ChunkScores)) == pairs // 10
        assert session.scalar(select(func.count()).select_from(ScoreMetaRow)) == 1  # model etc. stored once
    assert report.tables["chunk_scores"] > 4 * pairs  # a float32 a pair really is stored
    assert report.score_bytes / pairs < 100, report.line("score storage over budget")
