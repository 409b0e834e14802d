"""Score-cache keys: anything that can change a score changes the key (a new revision never hits)."""

from __future__ import annotations

from models.base import Pair
from workers.score_cache import cache_key

BASE = dict(model="m", revision="r1", score_type="p(yes)", max_length=8192, instruction="i")
PAIR = Pair("query", "document")


def test_same_inputs_same_key():
    assert cache_key(**BASE, pair=PAIR) == cache_key(**BASE, pair=Pair("query", "document"))


def test_every_ingredient_changes_the_key():
    key = cache_key(**BASE, pair=PAIR)
    variants = [
        cache_key(**{**BASE, "revision": "r2"}, pair=PAIR),
        cache_key(**{**BASE, "model": "m2"}, pair=PAIR),
        cache_key(**{**BASE, "score_type": "logit"}, pair=PAIR),
        cache_key(**{**BASE, "max_length": 512}, pair=PAIR),
        cache_key(**{**BASE, "instruction": None}, pair=PAIR),
        cache_key(**BASE, pair=Pair("query ", "document")),
        cache_key(**BASE, pair=Pair("query", "document2")),
        cache_key(**BASE, pair=Pair("query", "document", max_tokens_per_doc=10)),
    ]
    assert len({key, *variants}) == len(variants) + 1
