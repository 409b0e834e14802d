"""Degraded fallback scorer: cosine similarity of mean-pooled embeddings (a bi-encoder).

Used only by `rerankq worker --fallback` when no reranker can answer. Its scores are not
reranker probabilities (cosine in [-1, 1], no instruction), so every score it produces is stored
with `degraded=True`, this score type and the embedding model's own name.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional, Sequence

from models.base import Encoded, ModelInfo, Pair, ScoringBackend
from models.qwen3 import cut_document, pad_batch
from models.seq_cls import effective_max_length

if TYPE_CHECKING:
    from core.settings import Settings

BACKEND = "embedding-fallback"
SCORE_TYPE = "cosine-similarity (degraded fallback)"
QUERY_IDS = "query_ids"


class EmbeddingSimilarity(ScoringBackend):
    """Embeds query and document separately (documents are the batcher's unit, queries ride along)."""

    def __init__(self, tokenizer: Any, model: Any, *, max_length: int = 512, name: str = "", revision: str = "",
                 device: Optional[str] = None, dtype: Optional[str] = None) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_length = effective_max_length(max_length, tokenizer, model.config)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._lock = threading.Lock()  # fast tokenizers keep truncation state: one caller at a time
        self.info = ModelInfo(
            name=name or getattr(model, "name_or_path", ""), revision=revision, backend=BACKEND,
            score_type=SCORE_TYPE, device=device or str(model.device),
            dtype=dtype or str(model.dtype).removeprefix("torch."),
        )

    def default_instruction(self) -> Optional[str]:
        return None  # an embedding model takes no instruction

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        if not pairs:
            return []
        with self._lock:
            docs = cut_document(self.tokenizer, [p.document for p in pairs], [p.max_tokens_per_doc for p in pairs])
            options = dict(truncation=True, max_length=self.max_length, return_attention_mask=False)
            doc_ids = self.tokenizer(docs, **options)["input_ids"]
            queries = list(dict.fromkeys(p.query for p in pairs))
            query_ids = dict(zip(queries, self.tokenizer(queries, **options)["input_ids"]))
        return [Encoded(ids, extra={QUERY_IDS: query_ids[p.query]}) for ids, p in zip(doc_ids, pairs)]

    def score_encoded(self, batch: Sequence[Encoded]) -> list[float]:
        if not batch:
            return []
        import torch

        queries = list(dict.fromkeys(tuple(e.extra[QUERY_IDS]) for e in batch))
        with torch.inference_mode():
            docs = self.embed([e.input_ids for e in batch])
            query_vectors = self.embed([list(q) for q in queries])
        row = {q: i for i, q in enumerate(queries)}
        index = torch.tensor([row[tuple(e.extra[QUERY_IDS])] for e in batch], device=docs.device)
        return (docs * query_vectors[index]).sum(dim=-1).float().tolist()

    def embed(self, rows: Sequence[list[int]]) -> Any:
        """L2-normalised mean of the last hidden states over real tokens."""
        import torch

        inputs = pad_batch([Encoded(r) for r in rows], self.pad_id, "right", self.model.device)
        hidden = self.model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled.float(), dim=-1)

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        return self.score_encoded(self.encode(pairs))


def load_embedding_backend(settings: "Settings") -> EmbeddingSimilarity:
    """The fallback model from RERANKQ_FALLBACK_MODEL on the configured device, in eval mode."""
    from models.loading import ModelLoadError, model_revision, resolve_device, resolve_dtype

    if not settings.fallback_model:
        raise ModelLoadError("the fallback worker needs RERANKQ_FALLBACK_MODEL (an embedding model hub id or "
                             "local directory)")
    import transformers

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    source = settings.model_copy(update={"model": settings.fallback_model, "model_revision": ""})
    try:
        config = transformers.AutoConfig.from_pretrained(settings.fallback_model)
        tokenizer = transformers.AutoTokenizer.from_pretrained(settings.fallback_model)
        model = transformers.AutoModel.from_pretrained(settings.fallback_model, dtype=dtype)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"could not load the fallback embedding model {settings.fallback_model!r}: {error}. "
                             "Set RERANKQ_FALLBACK_MODEL to a local directory or a reachable hub id.") from error
    return EmbeddingSimilarity(tokenizer, model.eval().to(device), max_length=settings.max_length,
                               name=settings.fallback_model, revision=model_revision(source, config),
                               device=device, dtype=str(dtype).removeprefix("torch."))
