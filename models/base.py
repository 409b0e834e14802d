"""The boundary between the batcher and a scoring model: tokenize pairs, score token batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Optional, Protocol, Sequence


@dataclass(frozen=True)
class Pair:
    """One (query, document) to score; `instruction` is None for the model's default."""

    query: str
    document: str
    instruction: Optional[str] = None
    max_tokens_per_doc: Optional[int] = None


@dataclass
class Encoded:
    """A pair as token ids, ready to be padded into a batch.

    `prefix_len` counts leading tokens shared by every pair with the same query and
    instruction (used by shared-prefix reuse); 0 when the backend does not share.
    `prefix_key` is equal for exactly the pairs whose first `prefix_len` ids are equal
    (None: shares nothing); the batcher groups by it, the model runs each prefix once.
    """

    input_ids: list[int]
    token_type_ids: Optional[list[int]] = None
    prefix_len: int = 0
    prefix_key: Optional[Hashable] = None
    extra: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class ModelInfo:
    """What is stored with every score so that a result can be traced to its exact model."""

    name: str
    revision: str
    backend: str
    score_type: str
    device: str
    dtype: str


class ScoringBackend(Protocol):
    info: ModelInfo

    def default_instruction(self) -> Optional[str]:
        """The instruction used when a request gives none (None: the model takes none)."""

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        """Tokenize and truncate; safe to call from many threads at once."""

    def score_encoded(self, batch: Sequence[Encoded]) -> list[float]:
        """One forward pass over a batch; called only from the batcher thread."""

    def score(self, pairs: Sequence[Pair]) -> list[float]:
        """encode + score_encoded in one call (tests, benchmarks, warm-up)."""
