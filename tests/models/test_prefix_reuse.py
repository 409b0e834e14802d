"""Shared-prefix reuse scores exactly like one left-padded pass and like the model card (float32, CPU)."""

from __future__ import annotations

import dataclasses

import pytest

from models import prefix_cache
from models.base import Encoded, Pair
from models.qwen3 import Qwen3Reranker
from tests.support.model_card_reference import reference_scores

TOL = 1e-5
FRANCE = "what is the capital of France?"
BEIJING = "北京是哪个国家的首都?"

MIXED = [
    Pair(FRANCE, "Paris is the capital and largest city of France."),
    Pair(FRANCE, ""),
    Pair(FRANCE, "Models rank documents. " * 60),
    Pair(BEIJING, "北京是中国的首都,也是一座历史悠久的城市。"),
    Pair(FRANCE, "The quick brown fox jumps over the lazy dog."),
    Pair(BEIJING, "今天天气很好,我们去公园散步吧。"),
    Pair("q", "A document with a literal <|im_end|> and <think> inside.", instruction="Find anything"),
    Pair("q", "naïve résumé", instruction="Find anything"),
    Pair("q", "naïve résumé", instruction=""),  # same query, other instruction: another prefix
    Pair("a group of one", "Berlin is the capital of Germany."),
]


def triples(pairs):
    return [(p.instruction, p.query, p.document) for p in pairs]


def worst(a, b) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def backends(qwen3_parts):
    return (Qwen3Reranker(*qwen3_parts, prefix_reuse=True), Qwen3Reranker(*qwen3_parts, prefix_reuse=False))


def count_body_calls(backend, monkeypatch) -> list:
    calls = []
    body = backend.model.model
    real = body.forward

    def spy(*args, **kwargs):
        calls.append(kwargs.get("input_ids").shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(body, "forward", spy)
    return calls


def test_mixed_batch_runs_two_passes_and_matches_plain_and_card(backends, tiny_qwen3, monkeypatch):
    reuse, plain = backends
    encoded = reuse.encode(MIXED)
    plan = prefix_cache.choose(encoded, True)
    assert plan is not None, "this batch should take the reuse path"
    sizes = sorted(len(g) for g in plan.groups)
    assert sizes == [1, 1, 2, 2, 4], plan.groups
    calls = count_body_calls(reuse, monkeypatch)
    ours = reuse.score_encoded(encoded)
    assert [tuple(c)[0] for c in calls] == [len(plan.groups), len(MIXED)], "prefix pass, then suffix pass"
    monkeypatch.undo()
    assert worst(ours, plain.score(MIXED)) <= TOL
    assert worst(ours, reference_scores(tiny_qwen3, triples(MIXED))) <= TOL
    assert max(ours) - min(ours) > 0.2, "scores too flat to show a wrong prefix"


@pytest.mark.parametrize("max_length", [96, 160])
def test_truncated_documents_match_the_card(qwen3_parts, tiny_qwen3, max_length):
    reuse = Qwen3Reranker(*qwen3_parts, max_length=max_length, prefix_reuse=True)
    pairs = [Pair(FRANCE, "Models rank documents. " * 60), Pair(FRANCE, "Paris is lovely. " * 40),
             Pair(FRANCE, "Short one.")]
    encoded = reuse.encode(pairs)
    assert max(e.length for e in encoded) == max_length
    assert prefix_cache.choose(encoded, True) is not None
    ref = reference_scores(tiny_qwen3, triples(pairs), max_length=max_length)
    assert worst(reuse.score(pairs), ref) <= TOL


def test_pair_that_shares_nothing_rides_along(backends, tiny_qwen3):
    """A pair without a shared prefix (a query cut by truncation, a merge across the boundary)
    runs in the same two passes as a group of its own."""
    reuse, _plain = backends
    pairs = [Pair(BEIJING, "北京是中国的首都。"), Pair(FRANCE, "Paris. " * 40), Pair(FRANCE, "Lyon."),
             Pair(FRANCE, "Nice.")]
    encoded = reuse.encode(pairs)
    encoded[0] = dataclasses.replace(encoded[0], prefix_len=0, prefix_key=None)
    plan = prefix_cache.choose(encoded, True)
    assert plan is not None and plan.prefix_lens[0] == 1 and plan.groups[0] == [0]
    ref = reference_scores(tiny_qwen3, triples(pairs))
    assert worst(reuse.score_encoded(encoded), ref) <= TOL


def test_truncated_query_shares_nothing(qwen3_parts):
    reuse = Qwen3Reranker(*qwen3_parts, max_length=96, prefix_reuse=True)
    encoded = reuse.encode([Pair("long query " * 50, "document A"), Pair("long query " * 50, "document B")])
    assert all(e.prefix_len == 0 and e.prefix_key is None for e in encoded)
    assert prefix_cache.choose(encoded, True) is None


def test_custom_instruction_and_group_of_one_alone(backends, tiny_qwen3):
    reuse, _plain = backends
    pairs = [Pair("q", "naïve résumé", instruction="Find anything")]
    assert prefix_cache.choose(reuse.encode(pairs), True) is None, "a single pair gains nothing from reuse"
    assert worst(reuse.score(pairs), reference_scores(tiny_qwen3, triples(pairs))) <= TOL


def test_batch_of_distinct_queries_takes_the_plain_path(backends, monkeypatch):
    reuse, plain = backends
    pairs = [Pair(f"query {i}", "the same document") for i in range(4)]
    encoded = reuse.encode(pairs)
    assert prefix_cache.choose(encoded, True) is None
    calls = count_body_calls(reuse, monkeypatch)
    ours = reuse.score_encoded(encoded)
    assert len(calls) == 1
    monkeypatch.undo()
    assert worst(ours, plain.score(pairs)) <= TOL


def test_disabled_reuse_runs_one_pass(backends, monkeypatch):
    _reuse, plain = backends
    calls = count_body_calls(plain, monkeypatch)
    plain.score(MIXED[:3])
    assert len(calls) == 1


def test_reuse_never_computes_full_vocabulary_logits(backends, monkeypatch):
    reuse, _plain = backends

    def forbidden(*args, **kwargs):
        raise AssertionError("full lm_head forward")

    monkeypatch.setattr(reuse.model.lm_head, "forward", forbidden)
    monkeypatch.setattr(reuse.model, "forward", forbidden)
    assert len(reuse.score(MIXED)) == len(MIXED)


def test_prefix_key_is_shared_exactly_by_one_query_and_instruction(backends):
    reuse, _plain = backends
    encoded = reuse.encode(MIXED)
    keys = [e.prefix_key for e in encoded]
    assert keys[0] == keys[1] == keys[2] == keys[4]
    assert keys[3] == keys[5] != keys[0]
    assert keys[6] == keys[7] != keys[8]
    for e in encoded:
        assert list(e.prefix_key) == e.input_ids[: e.prefix_len]


def enc(prefix: tuple, rest: int) -> Encoded:
    return Encoded(list(prefix) + [7] * rest, prefix_len=len(prefix), prefix_key=prefix)


def test_plan_costs_each_prefix_once():
    a, b = (1,) * 50, (2,) * 30
    batch = [enc(a, 10), enc(a, 20), enc(a, 5), enc(b, 10), Encoded([3] * 30)]
    plan = prefix_cache.plan(batch)
    assert plan.groups == [[0, 1, 2], [3], [4]]
    assert plan.prefix_lens == [50, 30, 1]  # a row that shares nothing: its first token
    assert plan.real_tokens == 50 + 30 + (10 + 20 + 5 + 10 + 30)
    assert plan.padded_tokens == 3 * 50 + 5 * 29
    assert prefix_cache.batch_cost(batch, True) == (plan.real_tokens, plan.padded_tokens)
    assert prefix_cache.batch_cost(batch, False) == (sum(e.length for e in batch), 5 * 70)


def test_prefix_never_takes_the_last_token():
    prefix = (1,) * 8
    batch = [Encoded(list(prefix), prefix_len=8, prefix_key=prefix), enc(prefix, 3)]
    plan = prefix_cache.plan(batch)
    assert plan.prefix_lens == [7]
