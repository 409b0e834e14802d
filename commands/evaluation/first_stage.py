"""The first stage when no run is given: BM25 over the corpus with bm25s (Lucene's BM25 variant)."""

from __future__ import annotations

from commands.evaluation.collection import Collection
from commands.evaluation.runs import Run


def bm25_run(collection: Collection, query_ids: list[str], top_k: int) -> Run:
    import bm25s

    doc_ids = list(collection.corpus)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([collection.corpus[d] for d in doc_ids], stopwords="en", show_progress=False),
                    show_progress=False)
    k = min(top_k, len(doc_ids))
    tokens = bm25s.tokenize([collection.queries[q] for q in query_ids], stopwords="en", show_progress=False)
    results, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    run = {}
    for row, query_id in enumerate(query_ids):
        hits = [(doc_ids[int(i)], float(s)) for i, s in zip(results[row], scores[row]) if float(s) > 0]
        run[query_id] = sorted(hits, key=lambda item: (-item[1], item[0]))
    return run
