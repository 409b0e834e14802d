"""`--direct`: score in this process with the worker's own backend loader, long-document windows and
batch former, so the run equals what the service would return (within float rounding of batching)."""

from __future__ import annotations

from typing import Optional, Sequence

from tqdm import tqdm

from commands.evaluation.candidates import Candidates, SystemRun
from core.settings import Settings
from models.base import Pair

QUERIES_PER_ROUND = 64  # pairs of this many queries are pending at once, batched across queries as the worker does


def score_direct(model: Optional[str], candidates: Sequence[Candidates], progress: bool = True,
                 settings: Optional[Settings] = None) -> SystemRun:
    """Load `model` (a hub id or directory; None: RERANKQ_MODEL) and score every candidate: the pairs of
    QUERIES_PER_ROUND queries at a time go through the worker's batch former together (length-sorted,
    token-budgeted, each query's shared prompt prefix run once per batch)."""
    from models.loading import load_backend
    from models.long_documents import max_per_document, split_documents
    from workers.batch_plan import max_tokens_for, overhead_tokens_for, plan_batches

    base = settings or Settings()
    settings = base.model_copy(update={"model": model}) if model else base
    try:
        backend = load_backend(settings)
    except Exception as error:  # noqa: BLE001 - hub unreachable, not a reranker, bad files: one clear line
        raise ValueError(f"--model {settings.model}: cannot load it ({error})") from error
    max_tokens = max_tokens_for(settings.max_batch_tokens, backend.info.device)
    overhead = overhead_tokens_for(settings.batch_overhead_tokens, backend.info.device)
    share = bool(getattr(backend, "shares_prefix", False))
    scores: dict[str, dict[str, float]] = {}
    bar = tqdm(total=len(candidates), desc=f"direct {model or settings.model}", unit="query", disable=not progress)
    for first in range(0, len(candidates), QUERIES_PER_ROUND):
        group = candidates[first: first + QUERIES_PER_ROUND]
        pairs = [Pair(item.query, text, item.instruction) for item in group for text in item.texts]
        windows, owners = split_documents(backend, pairs)
        encoded = backend.encode(windows)
        flat = [0.0] * len(encoded)
        for rows in plan_batches(encoded, max_tokens, settings.max_batch_pairs, share, overhead):
            for i, score in zip(rows, backend.score_encoded([encoded[i] for i in rows])):
                flat[i] = score
        best = iter(max_per_document(flat, owners, len(pairs)))
        for item in group:
            scores[item.query_id] = {doc_id: next(best) for doc_id in item.doc_ids}
        bar.update(len(group))
    bar.close()
    name = model or settings.served_model
    return SystemRun(name, backend.info.revision, scores)
