"""CPU the worker spends in the store per chunk: claim + save, measured in-process.

    python -m tests.store.bench_store_cpu [--docs 10] [--chunks 400] [--group 1 8 16] [--database-url URL|postgres]

The same calls the worker makes, on a real database, timed with this process's CPU clock (so
waiting on a lock or the network does not count; the database server's own CPU does not either).
`--group 1` goes through store.work.claim_chunk / save_scores, one transaction per chunk each (the
path without group commit, and the only one before it); larger groups go through
store.chunk_batch, one transaction per group, as the worker's committer does.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from commands.bench.databases import Databases
from rerankq.schemas import RerankRequest
from store.db import session_scope
from store.jobs import create_job
from store.migrate import upgrade
from store.work import ScoreMeta, claim_chunk, save_scores

META = ScoreMeta(model="Qwen/Qwen3-Reranker-0.6B", model_revision="0123456789abcdef0123456789abcdef01234567",
                 score_type="qwen3-p-yes", instruction="Given a web search query, retrieve relevant passages")


def never(_values):
    return []


def make_jobs(url: str, chunks: int, docs: int) -> list[str]:
    ids = []
    for i in range(chunks):
        job_id = str(uuid.uuid4())
        with session_scope(url) as session:
            create_job(session, job_id=job_id, model=META.model, queue="q", chunk_pairs=docs,
                       requests=[RerankRequest(query=f"query {i}", documents=[f"document {j} of {i}" for j in range(docs)])])
        ids.append(job_id)
    return ids


def run(url: str, job_ids: list[str], group: int) -> tuple[float, float]:
    """(claim, save) CPU seconds for every job's one chunk."""
    rng = random.Random(0)
    claim_cpu = save_cpu = 0.0
    for start in range(0, len(job_ids), group):
        keys = [(job_id, 0) for job_id in job_ids[start:start + group]]
        t0 = time.process_time()
        if group == 1:
            with session_scope(url) as session:
                works = [claim_chunk(session, keys[0][0], 0, 3)]
        else:
            from store.chunk_batch import claim_chunks
            with session_scope(url) as session:
                works = claim_chunks(session, keys, 3)
        t1 = time.process_time()
        scores = [[rng.random() for _ in w.documents] for w in works]
        t2 = time.process_time()
        if group == 1:
            with session_scope(url) as session:
                save_scores(session, works[0], scores[0], META, never)
        else:
            from store.chunk_batch import ChunkSave, save_chunks
            with session_scope(url) as session:
                save_chunks(session, [ChunkSave(w, s, META) for w, s in zip(works, scores)], never)
        t3 = time.process_time()
        claim_cpu += t1 - t0
        save_cpu += t3 - t2
    return claim_cpu, save_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10, help="documents per chunk (one request, one job)")
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--group", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--database-url", default="", help="empty: a new SQLite file; 'postgres': a throwaway cluster")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rerankq-store-cpu-"))
    cleanup = contextlib.ExitStack()  # stops the throwaway cluster of --database-url postgres
    try:
        url = Databases(options.database_url, cleanup).url_for("cpu") or f"sqlite:///{root / 'store.db'}"
        upgrade(url)
        run(url, make_jobs(url, 20, options.docs), max(options.group))  # warm-up: engine, caches, meta row
        for group in options.group:
            job_ids = make_jobs(url, options.chunks, options.docs)
            claim_cpu, save_cpu = run(url, job_ids, group)
            n = len(job_ids)
            print(f"{url.split(':')[0]}, {options.docs}-document chunks, group {group}: claim {claim_cpu / n * 1000:.2f} ms"
                  f" + save {save_cpu / n * 1000:.2f} ms = {(claim_cpu + save_cpu) / n * 1000:.2f} ms CPU per chunk, "
                  f"{(claim_cpu + save_cpu) / (n * options.docs) * 1000:.3f} ms per pair")
    finally:
        cleanup.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
