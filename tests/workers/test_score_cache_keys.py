"""Score-cache keys: anything that can change a score changes the key (a new revision never hits, and
workers in another dtype or long-document mode never share entries)."""

from __future__ import annotations

from types import SimpleNamespace

from core.settings import Settings
from models.base import ModelInfo, Pair
from workers.score_cache import cache_key, runtime_keys

BASE = dict(model="m", revision="r1", score_type="p(yes)", dtype="float32", max_length=8192,
            long_document_mode="truncate", long_document_max_windows=16, instruction="i")
PAIR = Pair("query", "document")


def test_same_inputs_same_key():
    assert cache_key(**BASE, pair=PAIR) == cache_key(**BASE, pair=Pair("query", "document"))


def test_every_ingredient_changes_the_key():
    key = cache_key(**BASE, pair=PAIR)
    variants = [
        cache_key(**{**BASE, "revision": "r2"}, pair=PAIR),
        cache_key(**{**BASE, "model": "m2"}, pair=PAIR),
        cache_key(**{**BASE, "score_type": "logit"}, pair=PAIR),
        cache_key(**{**BASE, "dtype": "bfloat16"}, pair=PAIR),
        cache_key(**{**BASE, "max_length": 512}, pair=PAIR),
        cache_key(**{**BASE, "long_document_mode": "chunk"}, pair=PAIR),
        cache_key(**{**BASE, "long_document_max_windows": 4}, pair=PAIR),
        cache_key(**{**BASE, "instruction": None}, pair=PAIR),
        cache_key(**BASE, pair=Pair("query ", "document")),
        cache_key(**BASE, pair=Pair("query", "document2")),
        cache_key(**BASE, pair=Pair("query", "document", max_tokens_per_doc=10)),
    ]
    assert len({key, *variants}) == len(variants) + 1


class _Backend:
    def __init__(self, dtype: str) -> None:
        self.info = ModelInfo(name="m", revision="r1", backend="qwen3", score_type="p(yes)", device="cpu",
                              dtype=dtype)

    def default_instruction(self) -> str:
        return "default instruction"


def worker(dtype: str = "float32", **settings) -> SimpleNamespace:
    return SimpleNamespace(backend=_Backend(dtype), settings=Settings(_env_file=None, **settings))


def test_workers_differing_in_dtype_or_long_document_handling_get_other_keys():
    pairs = [PAIR, Pair("query", "document", instruction="default instruction")]
    reference = runtime_keys(worker(), pairs)
    assert reference[0] == reference[1]  # no instruction means the model's default one
    assert runtime_keys(worker(), pairs) == reference
    others = [
        runtime_keys(worker("bfloat16"), pairs),
        runtime_keys(worker(long_document_mode="chunk"), pairs),
        runtime_keys(worker(long_document_max_windows=2), pairs),
    ]
    assert all(set(keys).isdisjoint(reference) for keys in others)
    assert len({keys[0] for keys in others}) == len(others)
