"""Bytes stored per scored pair, indexes included, through the real store code.

    python -m tests.store.bench_store_size [--pairs 20000] [--docs 10] [--database-url URL|postgres]

Creates jobs as the API does (store.jobs.create_job), claims and saves every chunk as the
worker does (store.chunk_batch, one forward pass's chunks per transaction), then reports each
table's bytes with its indexes: SQLite from `dbstat`, PostgreSQL from `pg_total_relation_size`
(measured as written, and again after VACUUM FULL, which drops the dead row versions that
updates leave until autovacuum reuses them).

"score storage" is what holds and tracks the scores: chunk_scores + score_metas + job_chunks.
The whole store also holds the jobs and the request texts (kept as submitted).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from commands.bench.databases import Databases
from rerankq.schemas import RerankRequest
from store.chunk_batch import ChunkSave, claim_chunks, save_chunks
from store.db import get_engine, session_scope
from store.jobs import create_job
from store.migrate import upgrade
from store.packed_scores import ScoreMeta

SCORE_TABLES = ("chunk_scores", "score_metas", "job_chunks")
META = ScoreMeta(model="Qwen/Qwen3-Reranker-0.6B", model_revision="0123456789abcdef0123456789abcdef01234567",
                 score_type="qwen3-p-yes: softmax([no, yes])[1] at the last position",
                 instruction="Given a web search query, retrieve relevant passages that answer the query")


@dataclass
class SizeReport:
    pairs: int
    tables: dict[str, int]  # table -> bytes, its indexes included

    @property
    def score_bytes(self) -> int:
        return sum(self.tables.get(name, 0) for name in SCORE_TABLES)

    @property
    def total_bytes(self) -> int:
        return sum(self.tables.values())

    def line(self, label: str) -> str:
        per_table = ", ".join(f"{name} {size / self.pairs:.1f}" for name, size in sorted(self.tables.items()) if size)
        return (f"{label}: {self.pairs} pairs; score storage {self.score_bytes / self.pairs:.1f} B/pair, whole store "
                f"{self.total_bytes / self.pairs:.1f} B/pair ({per_table})")


def store_pairs(url: str, pairs: int, docs: int, requests_per_job: int = 1, chunk_pairs: int = 256,
                group: int = 16, seed: int = 0) -> int:
    """Submit and score `pairs` pairs as jobs of `requests_per_job` requests of `docs` documents."""
    rng = random.Random(seed)
    jobs = []
    stored = 0
    while stored < pairs:
        job_id = str(uuid.uuid4())
        requests = [RerankRequest(query=f"query {len(jobs)}.{r}", documents=[f"d{i}" for i in range(docs)])
                    for r in range(requests_per_job)]
        with session_scope(url) as session:
            _job, plans = create_job(session, job_id=job_id, requests=requests, model=META.model, queue="q",
                                     chunk_pairs=chunk_pairs)
        jobs.extend((job_id, plan.chunk_idx) for plan in plans)
        stored += docs * requests_per_job
    for start in range(0, len(jobs), group):
        keys = jobs[start:start + group]
        with session_scope(url) as session:
            works = claim_chunks(session, keys, max_attempts=3)
        with session_scope(url) as session:
            save_chunks(session, [ChunkSave(w, [rng.random() for _ in w.documents], META) for w in works if w])
    return stored


def measure(url: str, pairs: int, vacuum_full: bool = False) -> SizeReport:
    engine = get_engine(url)
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            owner = dict(connection.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type IN "
                                                 "('table', 'index')")).all())
            tables: dict[str, int] = {}
            for name, size in connection.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
                table = owner.get(name, name)
                tables[table] = tables.get(table, 0) + size
        return SizeReport(pairs, {k: v for k, v in tables.items() if not k.startswith(("sqlite_", "alembic"))})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if vacuum_full:
            connection.execute(text("VACUUM FULL"))
        rows = connection.execute(text(
            "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND relname <> 'alembic_version'")).all()
    return SizeReport(pairs, dict(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--docs", type=int, default=10, help="documents per request")
    parser.add_argument("--requests-per-job", type=int, default=1)
    parser.add_argument("--database-url", default="", help="empty: a new SQLite file; 'postgres': a throwaway cluster")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rerankq-size-"))
    cleanup = contextlib.ExitStack()  # stops the throwaway cluster of --database-url postgres
    try:
        url = Databases(options.database_url, cleanup).url_for("size") or f"sqlite:///{root / 'store.db'}"
        upgrade(url)
        pairs = store_pairs(url, options.pairs, options.docs, options.requests_per_job)
        label = f"{get_engine(url).dialect.name}, {options.requests_per_job} x {options.docs}-document requests a job"
        print(measure(url, pairs).line(label + (" (as written)" if "postgres" in url else "")))
        if get_engine(url).dialect.name == "postgresql":
            print(measure(url, pairs, vacuum_full=True).line(label + " (after VACUUM FULL)"))
    finally:
        cleanup.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
