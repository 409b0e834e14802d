"""Tiny, randomly initialised rerankers built locally, because the model hubs are unreachable.

The builders live in core/bench/model_builder.py, shared with `rerankq bench` (which builds a
larger model the same way); the names the tests use are re-exported here.
"""

from commands.bench.model_builder import (  # noqa: F401 - re-exported for the tests
    MARKER,
    QWEN_SPECIAL,
    QWEN_THINK,
    _build_atomically,
    _corpus,
    _is_built,
    _train_qwen_bpe,
    _train_wordpiece_vocab,
    build_qwen_tokenizer,
    build_tiny_cross_encoder,
    build_tiny_qwen3,
    build_tiny_qwen3_seq_cls,
)
