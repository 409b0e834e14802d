"""TREC run files (`qid Q0 docid rank score tag`): the first stage read in, the reranked run written out.

A run is {query id: [(document id, score), ...]} best first. Reading keeps each query's top k by
score (ties by rank, as trec_eval sorts), so the candidates do not depend on the file's line order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from commands.evaluation.collection import InputError

Run = dict[str, list[tuple[str, float]]]


def read_trec_run(path: Path, top_k: Optional[int] = None, corpus: Optional[dict] = None,
                  queries: Optional[dict] = None) -> Run:
    if not path.is_file():
        raise InputError(path, 0, "file not found")
    rows: dict[str, dict[str, tuple[float, int]]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            fields = text.split()
            if len(fields) != 6:
                raise InputError(path, number, f"expected 6 fields (qid Q0 docid rank score tag), got {len(fields)}")
            query_id, _, doc_id, rank, score, _ = fields
            try:
                value, position = float(score), int(rank)
            except ValueError:
                raise InputError(path, number, f"rank {rank!r} must be an integer and score {score!r} a number") \
                    from None
            if queries is not None and query_id not in queries:
                raise InputError(path, number, f"query {query_id!r} is not in queries.jsonl")
            if corpus is not None and doc_id not in corpus:
                raise InputError(path, number, f"document {doc_id!r} is not in corpus.jsonl")
            if doc_id in rows.setdefault(query_id, {}):
                raise InputError(path, number, f"document {doc_id!r} appears twice for query {query_id!r}")
            rows[query_id][doc_id] = (value, position)
    run = {}
    for query_id, docs in rows.items():
        ranked = sorted(docs.items(), key=lambda item: (-item[1][0], item[1][1], item[0]))
        run[query_id] = [(doc_id, score) for doc_id, (score, _) in ranked[:top_k]]
    return run


def sorted_run(scores: dict[str, dict[str, float]]) -> Run:
    """Best first; equal scores by document id, so a run is the same whichever way it was scored."""
    return {q: sorted(docs.items(), key=lambda item: (-item[1], item[0])) for q, docs in scores.items()}


def write_trec_run(path: Path, run: Run, tag: str) -> None:
    tag = "".join(c if not c.isspace() else "_" for c in tag) or "rerankq"
    with path.open("w", encoding="utf-8") as out:
        for query_id, ranked in run.items():
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                out.write(f"{query_id} Q0 {doc_id} {rank} {score:.8g} {tag}\n")
