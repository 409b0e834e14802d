"""Optional Redis cache of pair scores, so a pair scored once skips the model while it is cached.

The key is a SHA-256 of everything that decides the score: model name and revision, score type,
the dtype the model runs in (bf16 and fp32 scores differ), the instruction actually used (the model's
default when a request has none), query, document, max_tokens_per_doc, the max_length budget and the
long-document handling (mode and window count). A new model revision, or a worker running another
dtype or mode, therefore never meets old entries. One MGET per chunk looks every pair up; only
misses go to the batcher; misses are written back with a TTL in one pipeline. Redis trouble never fails a chunk: it scores uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Callable, Optional, Sequence, cast

import redis
from prometheus_client import Counter

from core.redis_keys import SCORE_CACHE_PREFIX
from models.base import Pair

log = logging.getLogger(__name__)
PREFIX = SCORE_CACHE_PREFIX

HITS = Counter("rerankq_score_cache_hits", "Pairs answered from the score cache.")
MISSES = Counter("rerankq_score_cache_misses", "Pairs the score cache did not hold (scored by the model).")


def cache_key(model: str, revision: str, score_type: str, dtype: str, max_length: int,
              long_document_mode: str, long_document_max_windows: int, instruction: Optional[str],
              pair: Pair) -> str:
    fields = [model, revision, score_type, dtype, max_length, long_document_mode, long_document_max_windows,
              instruction, pair.query, pair.document, pair.max_tokens_per_doc]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
    return PREFIX + digest


def runtime_keys(runtime, pairs: Sequence[Pair]) -> list[str]:
    info, default, settings = runtime.backend.info, runtime.backend.default_instruction(), runtime.settings
    return [cache_key(info.name, info.revision, info.score_type, info.dtype, settings.max_length,
                      settings.long_document_mode, settings.long_document_max_windows,
                      pair.instruction if pair.instruction is not None else default, pair) for pair in pairs]


def score_with_cache(runtime, pairs: Sequence[Pair], score: Callable[[list[Pair]], list[float]]) -> list[float]:
    """Scores of `pairs`, taking cached ones from Redis and calling `score` for the rest only."""
    if not runtime.settings.score_cache_enabled or not pairs:
        return score(list(pairs))
    keys = runtime_keys(runtime, pairs)
    try:
        cached = runtime.redis.mget(keys)
    except redis.RedisError as error:
        log.warning("score cache unavailable (%s); scoring without it", error)
        return score(list(pairs))
    missing = [i for i, value in enumerate(cached) if value is None]
    HITS.inc(len(pairs) - len(missing))
    MISSES.inc(len(missing))
    fresh = score([pairs[i] for i in missing]) if missing else []
    scores: list[Optional[float]] = [None if value is None else float(value) for value in cached]
    for i, value in zip(missing, fresh):
        scores[i] = value
    if missing:
        _store(runtime, [keys[i] for i in missing], fresh)
    return cast(list[float], scores)  # every slot is filled by now


def _store(runtime, keys: list[str], scores: list[float]) -> None:
    ttl = runtime.settings.score_cache_ttl_s
    try:
        pipe = runtime.redis.pipeline(transaction=False)
        for key, value in zip(keys, scores):
            pipe.set(key, repr(float(value)), ex=ttl)
        pipe.execute()
    except redis.RedisError as error:
        log.warning("score cache write failed: %s", error)
