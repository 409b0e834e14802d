"""Shared-prefix reuse: run the prompt head of a query once, then only its documents.

Every Qwen3 pair of one (instruction, query) starts with the same tokens (system prompt,
instruction, query; `Encoded.prefix_len` / `prefix_key`). A batch is run in two passes:

1. the distinct prefixes, left-padded to a common length P, with the key/value cache kept;
2. the per-pair rest (document + prompt suffix), right-padded, over that cache gathered row by
   row (`batch_select_indices`), attention mask = the prefix's mask followed by the suffix's,
   positions continuing at P.

Right padding keeps the suffix adjacent to its prefix (left pads would sit between prefix and
document); causal attention means a right pad never changes an earlier position, and the
hidden state is read at each row's last real token. RoPE sees only relative positions, so the
scores equal the one-pass left-padded path up to float rounding.

`plan` is plain Python (no torch) so the batcher can cost batches the same way the model runs
them: reuse applies only when it computes fewer padded tokens than one pass would.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Hashable, Optional, Sequence

from models.base import Encoded


@dataclass(frozen=True)
class PrefixPlan:
    """How a batch runs with reuse: which rows share which prefix, and what it costs."""

    groups: list[list[int]]  # batch rows per distinct prefix, in order of first appearance
    prefix_lens: list[int]  # tokens run in the prefix pass per group (1 for a row that shares nothing)
    row_group: list[int]  # group index of every row
    real_tokens: int  # prefix tokens once per group + every row's own tokens
    padded_tokens: int  # groups x longest prefix + rows x longest suffix

    @property
    def rows(self) -> int:
        return len(self.row_group)


def share_key(encoded: Encoded) -> Optional[Hashable]:
    """The prefix a pair can share with others, or None (nothing shared)."""
    if encoded.prefix_len <= 0 or encoded.prefix_key is None:
        return None
    return encoded.prefix_key


def plan(batch: Sequence[Encoded]) -> PrefixPlan:
    """Group the rows by shared prefix; a prefix never takes a row's last token (it must be scored).

    A row that shares nothing is a group of its own whose first token goes through the prefix
    pass (any split of a lone row is exact), so no prefix row is all padding: attention kernels
    that drop padded positions (flash-attention) never see an empty sequence."""
    groups: list[list[int]] = []
    prefix_lens: list[int] = []
    row_group: list[int] = []
    index: dict[Hashable, int] = {}
    for row, encoded in enumerate(batch):
        key = share_key(encoded)
        if key is None or key not in index:
            if key is not None:
                index[key] = len(groups)
            groups.append([])
            prefix_lens.append(encoded.prefix_len if key is not None else 1)
        group = index[key] if key is not None else len(groups) - 1
        groups[group].append(row)
        prefix_lens[group] = max(0, min(prefix_lens[group], encoded.length - 1))
        row_group.append(group)
    suffixes = [e.length - prefix_lens[g] for e, g in zip(batch, row_group)]
    real = sum(prefix_lens) + sum(suffixes)
    padded = len(groups) * max(prefix_lens, default=0) + len(batch) * max(suffixes, default=0)
    return PrefixPlan(groups, prefix_lens, row_group, real, padded)


def plain_cost(batch: Sequence[Encoded]) -> tuple[int, int]:
    """(real, padded) tokens of one left-padded pass."""
    if not batch:
        return 0, 0
    return sum(e.length for e in batch), max(e.length for e in batch) * len(batch)


def choose(batch: Sequence[Encoded], enabled: bool) -> Optional[PrefixPlan]:
    """The reuse plan when it computes fewer padded tokens than one plain pass, else None."""
    if not enabled or len(batch) < 2:
        return None
    if all(share_key(e) is None for e in batch):
        return None
    reuse = plan(batch)
    if len(reuse.groups) == reuse.rows or reuse.padded_tokens >= plain_cost(batch)[1]:
        return None
    return reuse


def batch_cost(batch: Sequence[Encoded], share_prefix: bool) -> tuple[int, int]:
    """(real, padded) tokens the model computes for this batch, with reuse where it applies."""
    reuse = choose(batch, share_prefix)
    if reuse is None:
        return plain_cost(batch)
    return reuse.real_tokens, reuse.padded_tokens


def last_hidden_states(body: Any, batch: Sequence[Encoded], reuse: PrefixPlan, pad_id: int, to_device: Any) -> Any:
    """[rows, hidden] final hidden states at each row's last token, computed in two passes.

    `body` is the decoder stack (`model.model`), `to_device(tensor)` moves CPU tensors to the
    model's device (pinned and non-blocking on CUDA)."""
    import torch

    width = max(reuse.prefix_lens)
    prefix_ids, prefix_mask = [], []
    for rows, length in zip(reuse.groups, reuse.prefix_lens):
        pad = width - length
        prefix_ids.append([pad_id] * pad + batch[rows[0]].input_ids[:length])
        prefix_mask.append([0] * pad + [1] * length)
    out = body(
        input_ids=to_device(torch.tensor(prefix_ids)), attention_mask=to_device(torch.tensor(prefix_mask)),
        use_cache=True,
    )
    cache = _returned_cache(out)
    cache.batch_select_indices(to_device(torch.tensor(reuse.row_group)))

    suffixes = [e.input_ids[reuse.prefix_lens[g]:] for e, g in zip(batch, reuse.row_group)]
    span = max(len(s) for s in suffixes)
    suffix_ids = [s + [pad_id] * (span - len(s)) for s in suffixes]
    mask = [prefix_mask[g] + [1] * len(s) + [0] * (span - len(s)) for s, g in zip(suffixes, reuse.row_group)]
    positions = torch.arange(width, width + span).unsqueeze(0).expand(len(batch), span)
    out = body(
        input_ids=to_device(torch.tensor(suffix_ids)), attention_mask=to_device(torch.tensor(mask)),
        position_ids=to_device(positions.contiguous()), use_cache=True, **{_cache_argument(body): cache},
    )
    last = to_device(torch.tensor([len(s) - 1 for s in suffixes]))
    row_index = torch.arange(len(batch), device=last.device)
    return out.last_hidden_state[row_index, last]


def _cache_argument(body: Any) -> str:
    """The forward keyword that takes a key/value cache: `cache` from transformers 5.2x on,
    `past_key_values` before (deprecated there, to be removed in 5.40)."""
    return _cache_argument_of(type(body))  # type: ignore[arg-type]  # classes are hashable


@functools.lru_cache(maxsize=None)
def _cache_argument_of(model_class: Any) -> str:
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _returned_cache(out: Any) -> Any:
    """The key/value cache a forward pass returned, under either name (see `_cache_argument`)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
