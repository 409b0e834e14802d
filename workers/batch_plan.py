"""Which pending pairs run together: the batcher's batch forming, as pure functions.

A pair is anything with `encoded` (models.base.Encoded) and `enqueued_at`. Pairs are sorted by
length and cut into batches under a padded-token budget and a pair cap. With a backend that
shares prompt prefixes, a batch is costed as the model runs it (each query's prefix once, then
every pair's rest; models/prefix_cache.py). The same functions plan offline scoring
(`plan_batches`, used by the benchmark's direct mode), so it batches exactly like a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Iterator, Optional, Protocol, Sequence, TypeVar

from models.base import Encoded
from models.prefix_cache import batch_cost, share_key


class Item(Protocol):
    encoded: Encoded
    enqueued_at: float
    facts: "PairFacts"  # pair_facts(encoded), computed once when the pair is queued


ItemT = TypeVar("ItemT", bound=Item)  # batches hold the caller's own item type


@dataclass(frozen=True, slots=True)
class PairFacts:
    """What costing needs of one pair. Computed once, when the pair is queued: the model thread
    plans every batch, and reading these through helpers per pair per batch was a fifth of its
    time at a deep queue."""

    length: int
    key: Optional[Hashable]  # share_key: equal for pairs whose prefix the model runs once
    shared: int  # leading tokens it can share with others of its query (0: none)

    @property
    def rest(self) -> int:
        return self.length - self.shared


def pair_facts(encoded: Encoded) -> PairFacts:
    key = share_key(encoded)
    return PairFacts(len(encoded.input_ids), key, encoded.prefix_len if key is not None else 0)


@dataclass(eq=False)
class _Offline:
    encoded: Encoded
    index: int
    enqueued_at: float = 0.0
    facts: PairFacts = field(init=False)

    def __post_init__(self) -> None:
        self.facts = pair_facts(self.encoded)


class _Cost:
    """(padded, real) tokens of a growing batch, as the model will run it: one left-padded pass,
    or (sharing) each distinct prefix once plus every pair's rest, whichever pads less."""

    def __init__(self, share_prefix: bool) -> None:
        self.share_prefix = share_prefix
        self.count = 0
        self.longest = 0
        self.plain_real = 0
        self.prefixes: set = set()
        self.loners = 0  # pairs sharing nothing: each is a group of its own (empty prefix)
        self.longest_prefix = 0
        self.longest_rest = 0
        self.reuse_real = 0
        self.padded = 0
        self.real = 0

    def with_item(self, facts: PairFacts) -> tuple[int, int]:
        """The batch's (padded, real) tokens if the pair joined it."""
        count = self.count + 1
        length = facts.length
        plain = ((self.longest if self.longest > length else length) * count, self.plain_real + length)
        if not self.share_prefix:
            return plain
        key, shared = facts.key, facts.shared
        new_group = key is None or key not in self.prefixes
        groups = len(self.prefixes) + self.loners + (1 if new_group else 0)
        if groups == count:  # nothing shared: the model runs one plain pass
            return plain
        rest = length - shared
        padded = groups * max(self.longest_prefix, shared) + count * max(self.longest_rest, rest)
        real = self.reuse_real + rest + (shared if new_group else 0)
        return (padded, real) if padded < plain[0] else plain

    def add(self, facts: PairFacts, cost: tuple[int, int]) -> None:
        """Let the pair join; `cost` is what `with_item(facts)` returned (the caller has it already)."""
        self.padded, self.real = cost
        self.count += 1
        length = facts.length
        if length > self.longest:
            self.longest = length
        self.plain_real += length
        if self.share_prefix:
            key, shared = facts.key, facts.shared
            if key is None:
                self.loners += 1
                self.reuse_real += length
            else:
                self.reuse_real += length - shared + (0 if key in self.prefixes else shared)
                self.prefixes.add(key)
            if shared > self.longest_prefix:
                self.longest_prefix = shared
            if length - shared > self.longest_rest:
                self.longest_rest = length - shared


def form_batches(
    items: Sequence[ItemT], max_tokens: int, max_pairs: int, share_prefix: bool = False,
    overhead_tokens: Optional[int] = None,
) -> list[list[ItemT]]:
    """Every batch of `iter_batches`, in order."""
    return list(iter_batches(items, max_tokens, max_pairs, share_prefix, overhead_tokens))


def iter_batches(
    items: Sequence[ItemT], max_tokens: int, max_pairs: int, share_prefix: bool = False,
    overhead_tokens: Optional[int] = None,
) -> Iterator[list[ItemT]]:
    """Greedy cut of length-sorted items: each batch's padded cost stays within the budget.

    Without sharing the cost is longest x count. With it, pairs are sorted by the tokens they do
    not share in bands a quarter of the prefix long, and by query within a band: a batch then
    holds pairs of similar length from few queries, so few prefixes run per batch (sorting by
    length alone mixes every query into every batch; by query alone pads short documents to
    long ones). Batches are costed by `_Cost`. With `overhead_tokens` (what one more forward
    pass costs, in tokens) a batch is also cut where growing it would add more padding than
    that: long-tailed lengths then run in batches of similar lengths. Lazy: a caller that needs
    one batch (`pick_batch`) stops costing pairs once it has it."""
    facts = [item.facts for item in items]
    if share_prefix and items:
        rank: dict = {}
        for fact in facts:
            rank.setdefault(fact.key, len(rank))
        band = max(1, max(f.shared for f in facts) // 4)
        keys: list = [(f.rest // band, rank[f.key], f.rest) for f in facts]
    else:
        keys = [f.length for f in facts]
    current: list[ItemT] = []
    cost = _Cost(share_prefix)
    for j in sorted(range(len(facts)), key=keys.__getitem__):
        fact = facts[j]
        joined = cost.with_item(fact)
        if current:
            padded, real = joined
            waste = (padded - cost.padded) - (real - cost.real)
            if (padded > max_tokens or len(current) >= max_pairs
                    or (overhead_tokens is not None and waste > overhead_tokens)):
                yield current
                current = []
                cost = _Cost(share_prefix)
                joined = (fact.length, fact.length)  # alone in a new batch: one plain row
        current.append(items[j])
        cost.add(fact, joined)
    if current:
        yield current


def max_tokens_for(setting: Optional[int], device: str) -> int:
    """RERANKQ_MAX_BATCH_TOKENS, or the budget that runs fastest on this kind of device: a GPU
    needs large batches to stay busy; on a CPU the cost follows tokens and batches past a few
    thousand tokens spill the caches (on 2 cores, 2048 ran bulk and long documents ~15% faster
    than 16384: `rerankq bench` with RERANKQ_MAX_BATCH_TOKENS set each way)."""
    if setting is not None:
        return setting
    return 16384 if str(device).startswith("cuda") else 2048


def overhead_tokens_for(setting: Optional[int], device: str) -> int:
    """RERANKQ_BATCH_OVERHEAD_TOKENS, or what a forward pass costs beyond its tokens on this kind
    of device: little on CPU (cost follows tokens), much on a GPU (small batches leave it idle)."""
    if setting is not None:
        return setting
    return 1024 if str(device).startswith("cuda") else 64


def plan_batches(
    encoded: Sequence[Encoded], max_tokens: int, max_pairs: int, share_prefix: bool = False,
    overhead_tokens: Optional[int] = None,
) -> list[list[int]]:
    """The batches the batcher would cut from these pairs all pending at once, as index lists
    (offline scoring, e.g. the benchmark's direct mode, batches exactly like the worker)."""
    items = [_Offline(e, i) for i, e in enumerate(encoded)]
    batches = form_batches(items, max_tokens, max_pairs, share_prefix, overhead_tokens)
    return [[item.index for item in batch] for batch in batches]


def batch_tokens(batch: Sequence[Item], share_prefix: bool) -> int:
    """Padded tokens the model computes for `batch` (the same rule the model applies)."""
    return batch_cost([i.encoded for i in batch], share_prefix)[1]


def pick_batch(
    lane: Sequence[ItemT], max_tokens: int, max_pairs: int, share_prefix: bool,
    overhead_tokens: Optional[int] = None,
) -> list[ItemT]:
    """The batch holding the lane's oldest pair.

    With sharing, the oldest pair's own query may run alone instead of beside other queries'
    pairs of similar length: chosen when it costs less per pair and keeps at least half as many
    pairs (a batch must stay large enough to keep the device busy)."""
    oldest = min(lane, key=lambda i: i.enqueued_at)
    mixed = next(b for b in iter_batches(lane, max_tokens, max_pairs, share_prefix, overhead_tokens) if oldest in b)
    key = oldest.facts.key
    if not share_prefix or key is None:
        return mixed
    own = [i for i in lane if i.facts.key == key]
    if len(own) == len(lane):
        return mixed
    alone = next(b for b in iter_batches(own, max_tokens, max_pairs, share_prefix, overhead_tokens) if oldest in b)
    if 2 * len(alone) < len(mixed):
        return mixed
    if batch_tokens(alone, True) * len(mixed) < batch_tokens(mixed, True) * len(alone):
        return alone
    return mixed
