"""Loaded tiny models for the backend tests (the directories come from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny_models import build_tiny_qwen3_seq_cls


@pytest.fixture(scope="session")
def tiny_qwen3_seq_cls(models_dir, tiny_qwen3) -> Path:
    return Path(build_tiny_qwen3_seq_cls(models_dir / "tiny-qwen3-seq-cls", tiny_qwen3))


@pytest.fixture(scope="session")
def qwen3_parts(tiny_qwen3):
    """(tokenizer, model) loaded the way load_backend does on CPU: left padding, float32, eval."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen3, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3, dtype=torch.float32).eval()
    return tokenizer, model


@pytest.fixture(scope="session")
def qwen3(qwen3_parts):
    from models.qwen3 import Qwen3Reranker

    return Qwen3Reranker(*qwen3_parts, max_length=8192, name="tiny-qwen3", revision="test")
