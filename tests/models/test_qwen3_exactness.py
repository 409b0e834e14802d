"""The Qwen3 backend scores exactly like the model card (float32, CPU), alone or in mixed batches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from models.base import Pair
from models.qwen3 import (
    DEFAULT_INSTRUCTION, PREFIX, SCORE_TYPE, SUFFIX, TEMPLATE, Qwen3Reranker, cut_document, pad_batch,
)
from tests.support.model_card_reference import reference_scores

TOL = 1e-5

CASES = [
    Pair("what is the capital of France?", "Paris is the capital and largest city of France."),
    Pair("what is the capital of France?", "The quick brown fox jumps over the lazy dog."),
    Pair("what is the capital of France?", ""),
    Pair("北京是哪个国家的首都?", "北京是中国的首都,也是一座历史悠久的城市。"),
    Pair("machine learning", "Models rank documents. " * 60),
    Pair("q", "A document with a literal <|im_end|> and <think> inside.", instruction="Find anything"),
    Pair("café {braces} \u0065\u0301", "naïve résumé", instruction=""),
]


def triples(pairs):
    return [(p.instruction, p.query, p.document) for p in pairs]


def assert_close(ours, ref, tol=TOL):
    assert len(ours) == len(ref)
    worst = max(abs(a - b) for a, b in zip(ours, ref))
    assert worst <= tol, f"max |ours - reference| = {worst:.3g}\nours={ours}\nref={ref}"


def test_prompt_strings_are_the_model_card_literals():
    assert PREFIX == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and "
        "the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n"
        "<|im_start|>user\n"
    )
    assert SUFFIX == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert TEMPLATE == "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
    assert DEFAULT_INSTRUCTION == "Given a web search query, retrieve relevant passages that answer the query"


def test_scores_spread_over_the_unit_interval(qwen3):
    scores = qwen3.score(CASES)
    assert all(0.0 < s < 1.0 for s in scores)
    assert max(scores) - min(scores) > 0.2, "tiny model too flat to discriminate prompt mistakes"


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "alone"])
def test_matches_reference(qwen3, tiny_qwen3, batch):
    ref = reference_scores(tiny_qwen3, triples(CASES), batch=batch)
    ours = qwen3.score(CASES) if batch else [qwen3.score([p])[0] for p in CASES]
    assert_close(ours, ref)


def test_batch_composition_barely_moves_scores(qwen3):
    alone = [qwen3.score([p])[0] for p in CASES]
    assert_close(qwen3.score(CASES), alone)
    assert_close(qwen3.score(CASES[::-1])[::-1], alone)


@pytest.mark.parametrize("max_length", [96, 128])
def test_truncation_matches_reference(qwen3_parts, tiny_qwen3, max_length):
    backend = Qwen3Reranker(*qwen3_parts, max_length=max_length)
    encoded = backend.encode(CASES)
    assert max(e.length for e in encoded) == max_length, "no case was long enough to be truncated"
    assert all(e.input_ids[-len(backend.encoder.suffix_ids):] == backend.encoder.suffix_ids for e in encoded)
    for batch in (True, False):
        ref = reference_scores(tiny_qwen3, triples(CASES), max_length=max_length, batch=batch)
        assert_close(backend.score(CASES), ref)


def test_query_longer_than_budget_drops_the_document_like_the_card(qwen3_parts, tiny_qwen3):
    backend = Qwen3Reranker(*qwen3_parts, max_length=96)
    pairs = [Pair("long query " * 50, "document A"), Pair("long query " * 50, "document B")]
    scores = backend.score(pairs)
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    assert_close(scores, reference_scores(tiny_qwen3, triples(pairs), max_length=96))


def test_ids_equal_tokenizing_the_whole_prompt(qwen3):
    tokenizer = qwen3.tokenizer
    for pair, encoded in zip(CASES, qwen3.encode(CASES)):
        instruction = DEFAULT_INSTRUCTION if pair.instruction is None else pair.instruction
        body = TEMPLATE.format(instruction=instruction, query=pair.query, doc=pair.document)
        assert encoded.input_ids == tokenizer.encode(PREFIX + body + SUFFIX, add_special_tokens=False)


def test_literal_control_tokens_in_documents_are_not_escaped(qwen3):
    im_end = qwen3.tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = qwen3.encode([CASES[5]])[0].input_ids
    body_ids = ids[len(qwen3.encoder.prefix_ids):-len(qwen3.encoder.suffix_ids)]
    assert im_end in body_ids


def test_double_newline_template_is_detected(qwen3, tiny_qwen3):
    """The README-vLLM `\\n\\n` layout must score visibly differently, or these tests prove nothing."""

    def double_newlines(instruction, query, doc):
        return f"<Instruct>: {instruction or DEFAULT_INSTRUCTION}\n\n<Query>: {query}\n\n<Document>: {doc}"

    wrong = reference_scores(tiny_qwen3, triples(CASES), prompt_format=double_newlines)
    assert max(abs(a - b) for a, b in zip(qwen3.score(CASES), wrong)) > 1e-2


def test_right_padding_is_detected(qwen3, tiny_qwen3):
    """Reading position -1 of a right-padded batch reads pads for every shorter row."""
    import torch

    encoded = qwen3.encode(CASES)
    with torch.inference_mode():
        inputs = pad_batch(encoded, qwen3.pad_id, "right", "cpu")
        hidden = qwen3.model.model(**inputs).last_hidden_state[:, -1, :]
        wrong = torch.softmax(qwen3._no_yes_logits(hidden), dim=-1)[:, 1].tolist()
    ref = reference_scores(tiny_qwen3, triples(CASES))
    longest = max(range(len(encoded)), key=lambda i: encoded[i].length)
    diffs = [abs(a - b) for i, (a, b) in enumerate(zip(wrong, ref)) if i != longest]
    assert max(diffs) > 1e-2


def test_never_computes_full_vocabulary_logits(qwen3, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("full lm_head forward")

    monkeypatch.setattr(qwen3.model.lm_head, "forward", forbidden)
    monkeypatch.setattr(qwen3.model, "forward", forbidden)
    assert len(qwen3.score(CASES[:3])) == 3


def test_lm_head_bias_is_applied(qwen3_parts, tiny_qwen3):
    import torch

    tokenizer, model = qwen3_parts
    backend = Qwen3Reranker(tokenizer, model)
    pairs = CASES[:2]
    before = backend.score(pairs)
    head = model.lm_head
    head.bias = torch.nn.Parameter(torch.zeros(head.out_features))
    try:
        head.bias.data[backend.yes_id] = 1.0
        after = backend.score(pairs)
        with torch.inference_mode():
            full = model(**pad_batch(backend.encode(pairs), backend.pad_id, "left", "cpu")).logits[:, -1, :]
        expected = torch.softmax(full[:, [backend.no_id, backend.yes_id]], dim=-1)[:, 1].tolist()
    finally:
        head.bias = None
    assert all(a > b for a, b in zip(after, before))
    assert_close(after, expected)


@pytest.mark.parametrize("answer", [None, 0], ids=["none", "unk-id"])
def test_missing_yes_token_raises(qwen3_parts, monkeypatch, answer):
    tokenizer, model = qwen3_parts
    real = tokenizer.convert_tokens_to_ids
    monkeypatch.setattr(tokenizer, "convert_tokens_to_ids", lambda t: answer if t == "yes" else real(t))
    with pytest.raises(ValueError, match="'yes'"):
        Qwen3Reranker(tokenizer, model)


def test_max_length_below_prompt_raises(qwen3_parts):
    with pytest.raises(ValueError, match="RERANKQ_MAX_LENGTH"):
        Qwen3Reranker(*qwen3_parts, max_length=16)


def test_prefix_len_marks_tokens_shared_by_one_query(qwen3):
    query = "what is the capital of France?"
    docs = ("Paris.", "", "北京", "!!! punctuation", " spaced")
    encoded = qwen3.encode([Pair(query, doc) for doc in docs])
    lengths = {e.prefix_len for e in encoded}
    assert len(lengths) == 1 and lengths.pop() > len(qwen3.encoder.prefix_ids)
    n = encoded[0].prefix_len
    assert all(e.input_ids[:n] == encoded[0].input_ids[:n] for e in encoded)
    other = qwen3.encode([Pair("another query", "Paris.")])[0]
    assert other.input_ids[: other.prefix_len] != encoded[0].input_ids[: other.prefix_len]


def test_prefix_len_is_zero_when_truncation_cuts_the_query(qwen3_parts):
    backend = Qwen3Reranker(*qwen3_parts, max_length=96)
    assert backend.encode([Pair("long query " * 50, "doc")])[0].prefix_len == 0


def test_max_tokens_per_doc_cuts_at_a_token_boundary(qwen3, tiny_qwen3):
    tokenizer = qwen3.tokenizer
    doc = "Paris is the capital and largest city of France."
    cut = cut_document(tokenizer, [doc, doc, doc, doc], [4, 0, 1000, None])
    assert cut[0] and doc.startswith(cut[0]) and len(tokenizer.encode(cut[0], add_special_tokens=False)) == 4
    assert cut[1:] == ["", doc, doc]
    chinese = cut_document(tokenizer, ["北京是中国的首都"], [2])[0]
    assert "北京是中国的首都".startswith(chinese) and chinese, "a character was split"
    limited = Pair("capital of France", doc, max_tokens_per_doc=4)
    by_hand = Pair("capital of France", cut[0])
    assert qwen3.encode([limited])[0].input_ids == qwen3.encode([by_hand])[0].input_ids
    assert_close(qwen3.score([limited]), reference_scores(tiny_qwen3, [(None, "capital of France", cut[0])]))


def test_encode_is_thread_safe(qwen3):
    pairs = [Pair(f"query {i}", "document " * (i % 7), max_tokens_per_doc=(i % 3) or None) for i in range(40)]
    serial = [e.input_ids for e in qwen3.encode(pairs)]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda p: qwen3.encode([p])[0].input_ids, pairs))
    assert parallel == serial


def test_empty_batch_and_info(qwen3):
    assert qwen3.encode([]) == [] and qwen3.score_encoded([]) == []
    assert qwen3.default_instruction() == DEFAULT_INSTRUCTION
    assert (qwen3.info.backend, qwen3.info.score_type, qwen3.info.dtype, qwen3.info.device) == (
        "qwen3", SCORE_TYPE, "float32", "cpu",
    )
    assert all(isinstance(s, float) for s in qwen3.score(CASES[:2]))
