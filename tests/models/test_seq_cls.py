"""The seq-cls backend equals a plain HF forward, and Qwen3 conversions equal the model card's P(yes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.base import Pair
from models.qwen3 import DEFAULT_INSTRUCTION
from models.seq_cls import SequenceClassificationReranker, effective_max_length
from tests.support.model_card_reference import reference_scores

TOL = 1e-5

PAIRS = [
    Pair("what is the capital of France?", "Paris is the capital and largest city of France."),
    Pair("what is the capital of France?", "The quick brown fox jumps over the lazy dog."),
    Pair("machine learning", ""),
    Pair("北京", "北京是中国的首都,也是一座历史悠久的城市。"),
    Pair("long", "Models rank documents by relevance. " * 80),
]


def assert_close(ours, ref, tol=TOL):
    worst = max(abs(a - b) for a, b in zip(ours, ref))
    assert len(ours) == len(ref) and worst <= tol, f"max diff {worst:.3g}: {ours} vs {ref}"


@pytest.fixture(scope="module")
def bert_parts(tiny_cross_encoder):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder, dtype=torch.float32).eval()
    return tokenizer, model


def plain_hf_logits(tokenizer, model, pairs, max_length):
    """The bge-reranker model-card way (`tokenizer([[q, d]], ...)`), one pair at a time.

    A list of pairs, not `tokenizer(q, d)`: the latter drops an empty document's [SEP]."""
    import torch

    logits = []
    for p in pairs:
        inputs = tokenizer(
            [[p.query, p.document]], truncation=True, max_length=max_length, return_tensors="pt"
        )
        with torch.no_grad():
            logits.append(model(**inputs).logits.view(-1)[0].item())
    return logits


def test_sigmoid_score_equals_plain_forward(bert_parts):
    import torch

    backend = SequenceClassificationReranker(*bert_parts)
    expected = torch.sigmoid(torch.tensor(plain_hf_logits(*bert_parts, PAIRS, 128))).tolist()
    assert_close([backend.score([p])[0] for p in PAIRS], expected)
    assert backend.info.score_type == "sigmoid(logit)" and backend.info.backend == "seq-cls"


def test_identity_returns_the_raw_logit(bert_parts):
    backend = SequenceClassificationReranker(*bert_parts, activation="identity")
    assert_close(backend.score(PAIRS), plain_hf_logits(*bert_parts, PAIRS, 128))
    assert backend.info.score_type == "logit"


def test_batched_equals_alone(bert_parts):
    backend = SequenceClassificationReranker(*bert_parts)
    alone = [backend.score([p])[0] for p in PAIRS]
    assert_close(backend.score(PAIRS), alone)
    assert_close(backend.score(PAIRS[::-1])[::-1], alone)


def test_pairs_are_truncated_to_the_position_table(bert_parts):
    backend = SequenceClassificationReranker(*bert_parts, max_length=8192)
    encoded = backend.encode(PAIRS)
    assert max(e.length for e in encoded) == 128  # config.max_position_embeddings of the tiny BERT
    assert all(e.token_type_ids is not None and len(e.token_type_ids) == e.length for e in encoded)
    assert set(encoded[0].token_type_ids) == {0, 1}


def test_instruction_is_ignored(bert_parts):
    backend = SequenceClassificationReranker(*bert_parts)
    assert backend.default_instruction() is None
    with_instruction = [Pair(p.query, p.document, instruction="Judge harshly") for p in PAIRS]
    assert backend.score(with_instruction) == backend.score(PAIRS)


def test_max_tokens_per_doc_shortens_the_document(bert_parts):
    backend = SequenceClassificationReranker(*bert_parts)
    full, cut = backend.encode([PAIRS[4], Pair(PAIRS[4].query, PAIRS[4].document, max_tokens_per_doc=5)])
    assert cut.length < full.length
    assert sum(cut.token_type_ids) == 5 + 1  # the document's tokens and its closing [SEP]


def test_rejects_multi_label_heads_and_unknown_activations(bert_parts):
    tokenizer, model = bert_parts
    fake = SimpleNamespace(config=SimpleNamespace(num_labels=2, model_type="bert"))
    with pytest.raises(ValueError, match="num_labels=2"):
        SequenceClassificationReranker(tokenizer, fake)
    with pytest.raises(ValueError, match="activation"):
        SequenceClassificationReranker(tokenizer, model, activation="softmax")


def test_effective_max_length():
    bert = SimpleNamespace(model_type="bert", max_position_embeddings=512, pad_token_id=0)
    roberta = SimpleNamespace(model_type="xlm-roberta", max_position_embeddings=514, pad_token_id=1)
    unset = SimpleNamespace(model_max_length=int(1e30))
    assert effective_max_length(8192, unset, bert) == 512
    assert effective_max_length(8192, unset, roberta) == 512
    assert effective_max_length(8192, SimpleNamespace(model_max_length=256), bert) == 256
    assert effective_max_length(64, SimpleNamespace(model_max_length=256), bert) == 64


# --- Qwen3 conversions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen3_seq_cls_parts(tiny_qwen3_seq_cls):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3_seq_cls)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_qwen3_seq_cls, dtype=torch.float32).eval()
    return tokenizer, model


@pytest.mark.parametrize("max_length", [8192, 96])
def test_qwen3_conversion_equals_model_card_p_yes(qwen3_seq_cls_parts, tiny_qwen3, max_length):
    backend = SequenceClassificationReranker(*qwen3_seq_cls_parts, max_length=max_length)
    pairs = PAIRS + [Pair("q", "custom instruction", instruction="Find anything")]
    triples = [(p.instruction, p.query, p.document) for p in pairs]
    assert_close(backend.score(pairs), reference_scores(tiny_qwen3, triples, max_length=max_length))
    suffix = backend.encoder.suffix_ids
    assert all(e.input_ids[-len(suffix):] == suffix for e in backend.encode(pairs))
    assert backend.default_instruction() == DEFAULT_INSTRUCTION
    assert backend.info.score_type == "sigmoid(logit), qwen3 model-card prompt"
