"""Small, randomly initialised rerankers built locally, because the model hubs are unreachable.

The tests build tiny ones (tests/support/tiny_models.py re-exports these builders); `rerankq
bench` builds a larger Qwen3-shaped one with the real vocabulary size, so that the cost of a
full-vocabulary head (what the tutorials compute) is paid as with the real model.

`build_tiny_qwen3` makes a Qwen3ForCausalLM with a byte-level BPE tokenizer that goes through the
same transformers code path as the real Qwen3-Reranker (tokenizer class `Qwen2Tokenizer`, Qwen2
pre-tokenizer regex, NFC, `<|endoftext|>` padding). `build_tiny_cross_encoder` makes a BERT
cross-encoder with one output logit. Both are idempotent: a directory that already holds a model
built with the same parameters is returned as is.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, cast

MARKER = ".rerankq-tiny-model.json"

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_THINK = ["<think>", "</think>"]

_SENTENCES = [
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
    'Note that the answer can only be "yes" or "no".',
    "<Instruct>: Given a web search query, retrieve relevant passages that answer the query",
    "<Query>: what is the capital of France?",
    "<Document>: Paris is the capital and largest city of France.",
    "<|im_start|>system\n<|im_start|>user\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Machine learning models rank documents by their relevance to a search query.",
    "A reranker reads the query and each passage together and returns a score.",
    "Berlin is the capital of Germany; Madrid is the capital of Spain.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The stock market closed higher today after the central bank decision.",
    "Water boils at 100 degrees Celsius at sea level, 212 in Fahrenheit.",
    "Python is a programming language that lets you work quickly.",
    "北京是中国的首都,也是一座历史悠久的城市。",
    "机器学习模型可以根据查询对文档进行排序。",
    "今天天气很好,我们去公园散步吧。",
    "上海是中国最大的经济中心之一。",
    "重排序模型判断文档是否满足查询的要求。",
]
_YES_NO_LINES = "\n".join(["yes", "no"] * 40)


def _corpus() -> list[str]:
    return _SENTENCES * 20 + [_YES_NO_LINES] * 5


def _is_built(path: Path, params: dict) -> bool:
    marker = path / MARKER
    return marker.is_file() and json.loads(marker.read_text()) == params


def _build_atomically(path: Path, params: dict, build: Callable[[Path], None]) -> Path:
    """Build into a sibling temp dir and rename it in place, so a crashed or concurrent build
    never leaves a half-written model that looks finished."""
    path = Path(path)
    if _is_built(path, params):
        return path
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        (tmp / MARKER).write_text(json.dumps(params))
        if path.exists():
            if _is_built(path, params):
                return path
            shutil.rmtree(path)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# --- Qwen3 -------------------------------------------------------------------------------------


def _train_qwen_bpe():
    """A byte-level BPE with Qwen2's pre-tokenizer, trained on the built-in corpus."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def build_qwen_tokenizer():
    """A `Qwen2Tokenizer` with the Qwen3 special tokens appended after the BPE vocabulary."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    model = json.loads(_train_qwen_bpe().to_str())["model"]
    vocab = dict(model["vocab"])
    for token in QWEN_SPECIAL + QWEN_THINK:
        vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        model_max_length=131072,
    )
    tokenizer.add_special_tokens({"extra_special_tokens": QWEN_SPECIAL})
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in QWEN_THINK])
    for word in ("yes", "no"):
        ids = tokenizer.encode(word, add_special_tokens=False)
        assert ids == [tokenizer.convert_tokens_to_ids(word)], f"{word!r} is not a single token: {ids}"
    return tokenizer


def _boost_yes_no(model, tokenizer, scale: float) -> None:
    """Random weights put P(yes) near 0.5; larger yes/no rows spread the scores over (0, 1)."""
    import torch

    ids = tokenizer.convert_tokens_to_ids(["no", "yes"])
    with torch.no_grad():
        model.lm_head.weight[ids] *= scale


def build_tiny_qwen3(
    path: str | os.PathLike,
    vocab_size: int | None = None,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    seed: int = 0,
    intermediate: int | None = None,
    init_range: float = 0.2,
) -> Path:
    """A tiny Qwen3ForCausalLM + tokenizer in `path` (the model's vocabulary is at least the
    tokenizer's; pass 151669 for the real Qwen3 size). `intermediate` defaults to 2 x hidden;
    `init_range` is the weights' standard deviation (large, so scores spread over (0, 1))."""
    params: dict[str, Any] = {"kind": "qwen3", "vocab_size": vocab_size, "hidden": hidden, "layers": layers,
              "heads": heads, "kv_heads": kv_heads, "seed": seed, "version": 1}
    if intermediate is not None or init_range != 0.2:  # keeps the markers of earlier builds valid
        params.update(intermediate=intermediate, init_range=init_range)

    def build(out: Path) -> None:
        import torch
        from transformers import Qwen3Config, Qwen3ForCausalLM

        tokenizer = build_qwen_tokenizer()
        tokenizer.save_pretrained(out)
        config = Qwen3Config(
            vocab_size=max(len(tokenizer), vocab_size or 0), hidden_size=hidden,
            intermediate_size=intermediate or 2 * hidden, num_hidden_layers=layers, num_attention_heads=heads,
            num_key_value_heads=kv_heads, head_dim=hidden // heads, max_position_embeddings=32768,
            initializer_range=init_range, tie_word_embeddings=False, dtype="float32",
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        )
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config).eval()
        _boost_yes_no(model, tokenizer, scale=3.0)
        model.save_pretrained(out, safe_serialization=True)

    return _build_atomically(Path(path), params, build)


def build_tiny_qwen3_seq_cls(path: str | os.PathLike, causal_dir: str | os.PathLike) -> Path:
    """A Qwen3ForSequenceClassification converted from a tiny causal model in `causal_dir` the way
    tomaarsen's *-seq-cls checkpoints are: one score row W[yes] - W[no], so sigmoid(logit) = P(yes)."""
    params = {"kind": "qwen3-seq-cls", "source": str(Path(causal_dir).resolve()), "version": 1}

    def build(out: Path) -> None:
        import torch
        from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM, Qwen3ForSequenceClassification

        tokenizer = AutoTokenizer.from_pretrained(causal_dir)
        causal = Qwen3ForCausalLM.from_pretrained(causal_dir, dtype=torch.float32)
        config = Qwen3Config.from_pretrained(causal_dir, num_labels=1)
        config.architectures = ["Qwen3ForSequenceClassification"]
        model = Qwen3ForSequenceClassification(config).eval()
        model.model.load_state_dict(causal.model.state_dict())
        no, yes = cast(list[int], tokenizer.convert_tokens_to_ids(["no", "yes"]))
        with torch.no_grad():
            model.score.weight.copy_(causal.lm_head.weight[yes] - causal.lm_head.weight[no])
        tokenizer.save_pretrained(out)
        model.save_pretrained(out, safe_serialization=True)

    return _build_atomically(Path(path), params, build)


# --- BERT cross-encoder -----------------------------------------------------------------------


def _train_wordpiece_vocab() -> dict[str, int]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=800, show_progress=False,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.get_vocab()


def build_tiny_cross_encoder(path: str | os.PathLike, seed: int = 0) -> Path:
    """A tiny BertForSequenceClassification (one logit) with a WordPiece tokenizer in `path`.

    `max_position_embeddings` (128) is below the tokenizer's `model_max_length` (512) on purpose,
    so tests see the model's limit win."""
    params = {"kind": "bert-cross-encoder", "seed": seed, "version": 2}

    def build(out: Path) -> None:
        import torch
        from transformers import BertForSequenceClassification

        tokenizer = tiny_bert_tokenizer(out)
        config = tiny_bert_config(tokenizer, num_labels=1)
        torch.manual_seed(seed)
        BertForSequenceClassification(config).eval().save_pretrained(out, safe_serialization=True)

    return _build_atomically(Path(path), params, build)


def tiny_bert_tokenizer(out: Path) -> Any:
    """A WordPiece tokenizer trained on the local corpus, saved in `out`."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer(vocab=_train_wordpiece_vocab(), model_max_length=512)
    tokenizer.save_pretrained(out)
    return tokenizer


def tiny_bert_config(tokenizer: Any, **extra: Any) -> Any:
    """The tiny BERT shape every BERT-style test model shares (2 layers of 32)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id, dtype="float32", **extra,
    )
