"""Qwen3-Reranker scoring: the model-card prompt, truncation and P(yes), without full-vocabulary logits.

Follows the model card's Transformers procedure (shared/docs/qwen3-reranker.md §2) token for token:
the formatted body alone is tokenized and truncated to `max_length - len(prefix) - len(suffix)`,
then wrapped in the separately tokenized prefix and suffix, left-padded, and scored as
softmax([logit_no, logit_yes])[1] at the last position. Only the two lm_head rows are multiplied,
so a long batch never materialises batch x length x vocabulary logits.

With `prefix_reuse` (the default) a batch whose pairs share a query runs the shared prompt head
once and only the documents per pair (models/prefix_cache.py), with the same scores up to float
rounding. With `long_document_mode="chunk"` a document longer than its window is scored as
consecutive token windows and keeps the best window's score (models/long_documents.py).

torch is imported inside the functions that need it, so the prompt constants stay importable
from processes that never load a model.
"""

from __future__ import annotations

import threading
from typing import Any, Literal, Optional, Sequence

from models import prefix_cache
from models.base import Encoded, ModelInfo, Pair, ScoringBackend
from models.long_documents import document_windows, max_per_document

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
TEMPLATE = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

SCORE_TYPE = "qwen3-p-yes: softmax([logit_no, logit_yes])[1] at the last token, model-card prompt"
CHUNKED_SCORE_TYPE = SCORE_TYPE + "; long documents: max over token windows"
LongDocumentMode = Literal["truncate", "chunk"]


def format_body(instruction: Optional[str], query: str, doc: str) -> str:
    """The user-turn text; only None (not "") selects the default instruction, as in the card."""
    if instruction is None:
        instruction = DEFAULT_INSTRUCTION
    return TEMPLATE.format(instruction=instruction, query=query, doc=doc)


def yes_no_ids(tokenizer: Any) -> tuple[int, int]:
    """The vocabulary ids of the bare tokens "no" and "yes" (not " yes" or "Yes")."""
    ids = []
    for token in ("no", "yes"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or tokenizer.convert_ids_to_tokens(token_id) != token:
            raise ValueError(
                f"the tokenizer has no single token {token!r}; a Qwen3-Reranker needs both 'yes' and 'no' "
                "in its vocabulary (is this the right model, or should RERANKQ_MODEL_BACKEND be seq-cls?)"
            )
        ids.append(token_id)
    return ids[0], ids[1]


def cut_document(tokenizer: Any, documents: Sequence[str], limits: Sequence[Optional[int]]) -> list[str]:
    """Cut each document to its first N tokens (N from `limits`, None: keep it whole).

    The document is tokenized alone and the string is sliced at the end offset of token N, so the
    cut never splits a character and the prompt is still built from text, like every other pair.
    Tokens in context can merge differently (a leading space, a character spanning two tokens), so
    N is approximate by a token or so; the prompt-level truncation still bounds the total.
    """
    out = list(documents)
    todo = [i for i, limit in enumerate(limits) if limit is not None]
    if not todo:
        return out
    offsets = tokenizer(
        [documents[i] for i in todo], add_special_tokens=False, return_offsets_mapping=True,
        return_attention_mask=False,
    )["offset_mapping"]
    for i, spans in zip(todo, offsets):
        limit = max(limits[i] or 0, 0)
        if len(spans) > limit:
            out[i] = documents[i][: spans[limit - 1][1]] if limit else ""
    return out


def pad_batch(batch: Sequence[Encoded], pad_id: int, side: str, device: Any) -> dict:
    """input_ids, attention_mask (and token_type_ids when every pair has them) as padded tensors."""
    import torch

    width = max(e.length for e in batch)
    fields = {
        "input_ids": ([e.input_ids for e in batch], pad_id),
        "attention_mask": ([[1] * e.length for e in batch], 0),
    }
    if all(e.token_type_ids is not None for e in batch):
        fields["token_type_ids"] = ([e.token_type_ids or [] for e in batch], 0)
    tensors = {}
    for name, (rows, fill) in fields.items():
        padded = [_pad_row(row, fill, width, side) for row in rows]
        tensors[name] = to_device(torch.tensor(padded, dtype=torch.long), device)
    return tensors


def to_device(tensor: Any, device: Any) -> Any:
    """A CPU tensor on `device`; on CUDA through pinned memory without blocking the host, so the
    copy overlaps the Python work that builds the next inputs (the stream keeps the order)."""
    if str(device).startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor if str(device) == "cpu" else tensor.to(device)


def _pad_row(row: list[int], fill: int, width: int, side: str) -> list[int]:
    pad = [fill] * (width - len(row))
    return pad + row if side == "left" else row + pad


class Qwen3PromptEncoder:
    """Pairs -> prompt token ids exactly as the model card builds them (also used by seq-cls conversions)."""

    def __init__(self, tokenizer: Any, max_length: int):
        self.tokenizer = tokenizer
        self.prefix_ids: list[int] = tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_ids: list[int] = tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.body_budget = max_length - len(self.prefix_ids) - len(self.suffix_ids)
        if self.body_budget < 1:
            raise ValueError(
                f"max_length {max_length} (RERANKQ_MAX_LENGTH) leaves no room for the query and document: "
                f"the Qwen3 prompt alone takes {len(self.prefix_ids) + len(self.suffix_ids)} tokens"
            )
        # A fast tokenizer's truncation settings are shared mutable state in Rust: concurrent calls
        # with different settings fail ("Already borrowed") or tokenize with the wrong ones.
        self._lock = threading.Lock()

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        if not pairs:
            return []
        with self._lock:
            limits = [p.max_tokens_per_doc for p in pairs]
            docs = cut_document(self.tokenizer, [p.document for p in pairs], limits)
            bodies = [format_body(p.instruction, p.query, doc) for p, doc in zip(pairs, docs)]
            body_ids = self.tokenizer(
                bodies, padding=False, truncation="longest_first", return_attention_mask=False,
                max_length=self.body_budget,
            )["input_ids"]
            heads = self._head_ids(pairs)
        keys = {key: tuple(self.prefix_ids + head) for key, head in heads.items()}
        encoded = []
        for p, ids in zip(pairs, body_ids):
            shared = self._shared_len(ids, heads[p.instruction, p.query])
            encoded.append(Encoded(
                self.prefix_ids + ids + self.suffix_ids, prefix_len=shared,
                prefix_key=keys[p.instruction, p.query] if shared else None,
            ))
        return encoded

    def windows(self, pairs: Sequence[Pair], max_windows: int) -> tuple[list[Pair], list[int]]:
        """Each pair as one or more pairs over consecutive token windows of its document.

        The window is `max_tokens_per_doc` (at most what fits beside the prompt and query), else
        what fits. A document that fits is its own single window (scored exactly as
        in truncate mode); windows after `max_windows` are dropped. Returns the window pairs and,
        for each, the index of the pair it came from."""
        if not pairs:
            return [], []
        with self._lock:
            heads = self._head_ids(pairs)
            out: list[Pair] = []
            owners: list[int] = []
            for index, pair in enumerate(pairs):
                # The space before the document joins its first token: one token of margin.
                room = self.body_budget - len(heads[pair.instruction, pair.query]) - 1
                size = min(room, pair.max_tokens_per_doc or room)
                texts = document_windows(self.tokenizer, pair.document, size, max_windows) if size > 0 else [
                    pair.document]  # the query fills the budget: the card drops the document anyway
                out.extend(Pair(pair.query, text, pair.instruction) for text in texts)
                owners.extend([index] * len(texts))
        return out, owners

    def _head_ids(self, pairs: Sequence[Pair]) -> dict:
        """Token ids of the body up to "<Document>:" for each distinct (instruction, query).

        The space after the colon is left out: the pre-tokenizer attaches it to the document."""
        keys = list(dict.fromkeys((p.instruction, p.query) for p in pairs))
        texts = [format_body(instruction, query, "").removesuffix(" ") for instruction, query in keys]
        ids = self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return dict(zip(keys, ids))

    def _shared_len(self, body_ids: list[int], head_ids: list[int]) -> int:
        """len(prefix) + len(head) when the body starts with exactly the head's tokens, else 0.

        Every pair of an (instruction, query) that passes this check starts with the same
        prefix + head ids, so the count is safe for prefix reuse; one that fails (a merge across
        the boundary, a query cut by truncation) just shares nothing."""
        if body_ids[: len(head_ids)] != head_ids:
            return 0
        return len(self.prefix_ids) + len(head_ids)


class Qwen3Reranker(ScoringBackend):
    """ScoringBackend for the original Qwen3-Reranker causal-LM checkpoints."""

    def __init__(
        self,
        tokenizer: Any,
        model: Any,
        *,
        max_length: int = 8192,
        name: str = "",
        revision: str = "",
        device: Optional[str] = None,
        dtype: Optional[str] = None,
        prefix_reuse: bool = True,
        long_document_mode: LongDocumentMode = "truncate",
        max_windows: int = 16,
    ):
        if long_document_mode not in ("truncate", "chunk"):
            raise ValueError(f"long_document_mode must be 'truncate' or 'chunk', not {long_document_mode!r}")
        self.tokenizer = tokenizer
        self.model = model
        self.prefix_reuse = prefix_reuse
        self.long_document_mode = long_document_mode
        self.max_windows = max_windows
        self.no_id, self.yes_id = yes_no_ids(tokenizer)
        if tokenizer.pad_token_id is None:
            raise ValueError("the Qwen3 tokenizer has no pad token (expected <|endoftext|>)")
        self.pad_id: int = tokenizer.pad_token_id
        self.encoder = Qwen3PromptEncoder(tokenizer, max_length)
        self.info = ModelInfo(
            name=name or getattr(model, "name_or_path", ""), revision=revision, backend="qwen3",
            score_type=CHUNKED_SCORE_TYPE if long_document_mode == "chunk" else SCORE_TYPE,
            device=device or str(model.device),
            dtype=dtype or str(model.dtype).removeprefix("torch."),
        )

    def default_instruction(self) -> Optional[str]:
        return DEFAULT_INSTRUCTION

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        return self.encoder.encode(pairs)

    @property
    def shares_prefix(self) -> bool:
        """Whether score_encoded runs shared prefixes once (the batcher costs batches the same way)."""
        return self.prefix_reuse

    def split_documents(self, pairs: Sequence[Pair]) -> tuple[list[Pair], list[int]]:
        """Chunk mode: window pairs and their owners; truncate mode: the pairs unchanged."""
        if self.long_document_mode != "chunk":
            return list(pairs), list(range(len(pairs)))
        return self.encoder.windows(pairs, self.max_windows)

    def score_encoded(self, batch: Sequence[Encoded]) -> list[float]:
        """P(yes) per pair. No position_ids, like the card: HF then uses 0..L-1 under left padding,
        so floats match the card's for the same batch (RoPE is relative, so scores barely move)."""
        if not batch:
            return []
        import torch

        device = self.model.device
        with torch.inference_mode():
            reuse = prefix_cache.choose(batch, self.prefix_reuse)
            if reuse is not None:
                hidden = prefix_cache.last_hidden_states(
                    self.model.model, batch, reuse, self.pad_id, lambda t: to_device(t, device))
            else:
                inputs = pad_batch(batch, self.pad_id, "left", device)
                hidden = self.model.model(**inputs, use_cache=False).last_hidden_state[:, -1, :]
            logits = self._no_yes_logits(hidden)
            return torch.softmax(logits.float(), dim=-1)[:, 1].tolist()

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        """encode + score_encoded, with long documents split and max-aggregated in chunk mode."""
        windows, owners = self.split_documents(pairs)
        return max_per_document(self.score_encoded(self.encode(windows)), owners, len(pairs))

    def _no_yes_logits(self, hidden: Any) -> Any:
        """[batch, 2] logits (no, yes) from the final hidden states, through two lm_head rows only.

        The rows are read at every call, so tied embeddings and weights changed after construction
        are honoured; a bias, if the head has one, is applied to the same two entries."""
        import torch

        head = self.model.get_output_embeddings()
        rows = torch.tensor([self.no_id, self.yes_id], device=hidden.device)
        bias = head.bias[rows] if getattr(head, "bias", None) is not None else None
        return torch.nn.functional.linear(hidden, head.weight[rows], bias)
