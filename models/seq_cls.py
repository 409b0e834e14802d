"""Cross-encoders with a one-logit classification head (bge-reranker, ms-marco MiniLM, Qwen3 seq-cls).

Classic cross-encoders read `[CLS] query [SEP] document [SEP]` as a text pair, truncated
longest-first, and take no instruction. Qwen3-Reranker conversions to
`Qwen3ForSequenceClassification` (score row = W[yes] - W[no]) need the Qwen3 prompt instead: they
reuse the causal backend's prompt encoder, because pair truncation of (query part, document +
suffix) would cut the suffix off long documents (shared/docs/qwen3-reranker.md §3d). Their
sigmoid(logit) then equals the original model's P(yes).
"""

from __future__ import annotations

import threading
from typing import Any, Literal, Optional, Sequence

from models.base import Encoded, ModelInfo, Pair, ScoringBackend
from models.qwen3 import DEFAULT_INSTRUCTION, Qwen3PromptEncoder, cut_document, pad_batch

Activation = Literal["sigmoid", "identity"]

# Tokenizers without a configured limit report a huge sentinel (int(1e30)) as model_max_length.
_SANE_TOKENIZER_LIMIT = 1_000_000


def effective_max_length(requested: int, tokenizer: Any, config: Any) -> int:
    """The smallest of the setting, the tokenizer's limit and the model's position table.

    RoBERTa-family models offset positions by padding_idx + 1, so their table holds two fewer
    tokens than max_position_embeddings says."""
    limits = [requested]
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _SANE_TOKENIZER_LIMIT:
        limits.append(tokenizer_limit)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if "roberta" in config.model_type or config.model_type == "camembert":
            positions -= (config.pad_token_id or 0) + 1
        limits.append(positions)
    return min(limits)


class PairEncoder:
    """Text-pair tokenization for classic cross-encoders, token_type_ids kept when the model uses them."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._lock = threading.Lock()  # the fast tokenizer's truncation state is shared (see qwen3.py)

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        if not pairs:
            return []
        with self._lock:
            limits = [p.max_tokens_per_doc for p in pairs]
            docs = cut_document(self.tokenizer, [p.document for p in pairs], limits)
            enc = self.tokenizer(
                [p.query for p in pairs], docs, padding=False, truncation="longest_first",
                max_length=self.max_length, return_attention_mask=False,
            )
        type_ids = enc.get("token_type_ids") or [None] * len(pairs)
        return [Encoded(ids, token_type_ids=types) for ids, types in zip(enc["input_ids"], type_ids)]


class SequenceClassificationReranker(ScoringBackend):
    """ScoringBackend for `AutoModelForSequenceClassification` checkpoints with `num_labels == 1`."""

    def __init__(
        self,
        tokenizer: Any,
        model: Any,
        *,
        max_length: int = 8192,
        activation: Activation = "sigmoid",
        name: str = "",
        revision: str = "",
        device: Optional[str] = None,
        dtype: Optional[str] = None,
    ):
        config = model.config
        if config.num_labels != 1:
            raise ValueError(
                f"the seq-cls backend needs a one-logit head; this model has num_labels={config.num_labels}"
            )
        if activation not in ("sigmoid", "identity"):
            raise ValueError(f"activation must be 'sigmoid' or 'identity', not {activation!r}")
        self.model = model
        self.activation = activation
        self.is_qwen3 = config.model_type == "qwen3"
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.encoder, self.padding_side = self._make_encoder(tokenizer, max_length)
        score_type = "sigmoid(logit)" if activation == "sigmoid" else "logit"
        self.info = ModelInfo(
            name=name or getattr(model, "name_or_path", ""), revision=revision, backend="seq-cls",
            score_type=score_type + (", qwen3 model-card prompt" if self.is_qwen3 else ""),
            device=device or str(model.device), dtype=dtype or str(model.dtype).removeprefix("torch."),
        )

    def _make_encoder(self, tokenizer: Any, max_length: int) -> tuple[Any, str]:
        if self.is_qwen3:
            # HF pools the rightmost non-pad token and refuses batches without a pad id; under
            # left padding that token is always the prompt's last one.
            if self.model.config.pad_token_id is None:
                self.model.config.pad_token_id = tokenizer.pad_token_id
            return Qwen3PromptEncoder(tokenizer, max_length), "left"
        limit = effective_max_length(max_length, tokenizer, self.model.config)
        return PairEncoder(tokenizer, limit), tokenizer.padding_side

    def default_instruction(self) -> Optional[str]:
        """Qwen3 conversions take an instruction; classic cross-encoders ignore it."""
        return DEFAULT_INSTRUCTION if self.is_qwen3 else None

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        return self.encoder.encode(pairs)

    def score_encoded(self, batch: Sequence[Encoded]) -> list[float]:
        if not batch:
            return []
        import torch

        with torch.inference_mode():
            inputs = pad_batch(batch, self.pad_id, self.padding_side, self.model.device)
            logits = self.model(**inputs).logits[:, 0].float()
            if self.activation == "sigmoid":
                logits = torch.sigmoid(logits)
            return logits.tolist()

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        return self.score_encoded(self.encode(pairs))
