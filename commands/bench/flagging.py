"""Benchmark (prints figures, asserts nothing): what flagging a case adds to the worker's final
store write, on SQLite. Run: `rerankq bench-flagging --docs 1000 --repeats 20`."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.migrate import upgrade
from store.work import ScoreMeta, claim_chunk, save_scores


def finish_one_job(url: str, n_docs: int, rule) -> float:
    """Seconds for save_scores of a one-chunk job (the write that finishes the job and flags it)."""
    job_id = str(uuid.uuid4())
    documents = [f"document number {i} " * 20 for i in range(n_docs)]
    with session_scope(url) as session:
        create_job(session, job_id=job_id, requests=[RerankRequest(query="q", documents=documents)], model="m",
                   queue="q", chunk_pairs=n_docs)
    with session_scope(url) as session:
        work = claim_chunk(session, job_id, 0, 3)
    assert work is not None, "the new job's only chunk is pending"
    scores = [i / n_docs for i in range(n_docs)]
    start = time.perf_counter()
    with session_scope(url) as session:
        save_scores(session, work, scores, ScoreMeta("m", "r", "p", None), rule)
    return time.perf_counter() - start


def main(n_docs: int = 1000, repeats: int = 20) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        rules = {"never flagged": lambda scores: [], "always flagged": lambda scores: ["low_top_score"]}
        for name, rule in rules.items():
            finish_one_job(url, n_docs, rule)  # warm up
            times = [finish_one_job(url, n_docs, rule) for _ in range(repeats)]
            print(f"{name:15s} {n_docs} docs: median {statistics.median(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms over {repeats} jobs")

