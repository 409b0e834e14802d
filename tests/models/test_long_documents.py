"""Chunk mode: a long document is scored as token windows, each exactly like the model card on
its text, and keeps the best window's score; truncate mode (the default) is the model card."""

from __future__ import annotations

import pytest

from models.base import Pair
from models.long_documents import document_windows, max_per_document, split_documents
from models.qwen3 import CHUNKED_SCORE_TYPE, SCORE_TYPE, Qwen3Reranker
from tests.support.model_card_reference import reference_scores

TOL = 1e-5
QUERY = "what is the capital of France?"
LONG = ("The quick brown fox jumps over the lazy dog near the river bank. " * 6
        + "Paris is the capital and largest city of France. " + "Water boils at 100 degrees Celsius. " * 6)
# Not in the tiny BPE's corpus: many byte-level tokens, some characters split over two.
CHINESE = "长城是世界上最长的建筑之一,位于中国北方。黄河流经九个省份。" * 2


def tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("document", [LONG, CHINESE], ids=["english", "chinese"])
def test_windows_cover_the_document_in_order(qwen3, document):
    tokenizer = qwen3.tokenizer
    windows = document_windows(tokenizer, document, size=16, max_windows=100)
    assert len(windows) > 2
    assert "".join(windows) == document, "windows must tile the text without loss or overlap"
    # A cut inside a character's byte tokens keeps the whole character: at most 3 bytes more.
    assert all(tokens(tokenizer, w) <= 16 + 3 for w in windows), [tokens(tokenizer, w) for w in windows]


def test_short_document_is_one_window_and_cap_drops_the_tail(qwen3):
    tokenizer = qwen3.tokenizer
    assert document_windows(tokenizer, "Paris.", size=16, max_windows=3) == ["Paris."]
    capped = document_windows(tokenizer, LONG, size=16, max_windows=3)
    assert len(capped) == 3 and LONG.startswith("".join(capped)) and "".join(capped) != LONG


def test_max_per_document():
    assert max_per_document([0.1, 0.7, 0.3, 0.2, 0.9], [0, 0, 0, 1, 2], 3) == [0.7, 0.2, 0.9]


@pytest.fixture(scope="module")
def chunked(qwen3_parts):
    return Qwen3Reranker(*qwen3_parts, long_document_mode="chunk", max_windows=50)


def test_each_window_scores_like_the_card_and_the_document_keeps_the_best(chunked, tiny_qwen3):
    pairs = [Pair(QUERY, LONG, max_tokens_per_doc=24), Pair(QUERY, "Paris.", max_tokens_per_doc=24),
             Pair(QUERY, CHINESE, instruction="Find anything", max_tokens_per_doc=24)]
    windows, owners = chunked.split_documents(pairs)
    assert owners.count(0) > 3 and owners.count(1) == 1 and owners.count(2) > 3
    assert all(w.max_tokens_per_doc is None for w in windows)
    assert windows[owners.index(1)].document == "Paris."
    assert "".join(w.document for w, o in zip(windows, owners) if o == 0) == LONG
    ref = reference_scores(tiny_qwen3, [(w.instruction, w.query, w.document) for w in windows])
    mine = chunked.score_encoded(chunked.encode(windows))
    assert max(abs(a - b) for a, b in zip(mine, ref)) <= TOL
    best = max_per_document(ref, owners, len(pairs))
    scores = chunked.score(pairs)
    assert max(abs(a - b) for a, b in zip(scores, best)) <= TOL
    assert len({round(r, 4) for r, o in zip(ref, owners) if o == 0}) > 1, "windows should score differently"


def test_without_a_limit_windows_fill_the_model_budget(qwen3_parts, tiny_qwen3):
    backend = Qwen3Reranker(*qwen3_parts, max_length=128, long_document_mode="chunk")
    truncating = Qwen3Reranker(*qwen3_parts, max_length=128)
    pairs = [Pair(QUERY, LONG), Pair(QUERY, "Paris.")]
    windows, owners = backend.split_documents(pairs)
    assert owners.count(0) > 2 and owners.count(1) == 1
    encoded = backend.encode(windows)
    assert all(e.length <= 128 for e in encoded)
    assert max(e.length for e in encoded) >= 120, "windows should use the budget"
    ref = reference_scores(tiny_qwen3, [(w.instruction, w.query, w.document) for w in windows], max_length=128)
    assert max(abs(a - b) for a, b in zip(backend.score_encoded(encoded), ref)) <= TOL
    scores = backend.score(pairs)
    assert scores[0] == pytest.approx(max(r for r, o in zip(ref, owners) if o == 0), abs=TOL)
    assert scores[1] == pytest.approx(truncating.score([pairs[1]])[0], abs=TOL), "a fitting doc is unchanged"


def test_truncate_mode_is_the_default_and_leaves_pairs_alone(qwen3):
    pairs = [Pair(QUERY, LONG, max_tokens_per_doc=8)]
    assert qwen3.long_document_mode == "truncate" and qwen3.info.score_type == SCORE_TYPE
    assert split_documents(qwen3, pairs) == (pairs, [0])
    assert split_documents(object(), pairs) == (pairs, [0])


def test_chunk_mode_is_named_in_the_score_type(chunked):
    assert chunked.info.score_type == CHUNKED_SCORE_TYPE != SCORE_TYPE


def test_unknown_mode_is_refused(qwen3_parts):
    with pytest.raises(ValueError, match="long_document_mode"):
        Qwen3Reranker(*qwen3_parts, long_document_mode="split")


def test_window_never_exceeds_the_room_and_a_full_query_keeps_one_window(qwen3_parts, tiny_qwen3):
    backend = Qwen3Reranker(*qwen3_parts, max_length=128, long_document_mode="chunk")
    windows, _owners = backend.split_documents([Pair(QUERY, LONG, max_tokens_per_doc=10_000)])
    assert len(windows) > 2 and all(e.length <= 128 for e in backend.encode(windows))
    pairs = [Pair("long query " * 50, LONG)]
    assert backend.split_documents(pairs) == ([Pair(pairs[0].query, LONG)], [0])
    ref = reference_scores(tiny_qwen3, [(None, pairs[0].query, LONG)], max_length=128)
    assert backend.score(pairs)[0] == pytest.approx(ref[0], abs=TOL)
