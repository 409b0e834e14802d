"""A tiny mean-pooled BERT embedding model for the degraded-fallback tests (built locally; the hubs are
unreachable), with the same WordPiece tokenizer and atomic build as tests/support/tiny_models.py."""

from __future__ import annotations

import os
from pathlib import Path

from commands.bench.model_builder import tiny_bert_config, tiny_bert_tokenizer
from tests.support.tiny_models import _build_atomically


def build_tiny_embedding_model(path: str | os.PathLike, seed: int = 1) -> Path:
    """A randomly initialised BertModel (no head) and its tokenizer in `path`."""
    params = {"kind": "bert-embedding", "seed": seed, "version": 1}

    def build(out: Path) -> None:
        import torch
        from transformers import BertModel

        config = tiny_bert_config(tiny_bert_tokenizer(out))
        torch.manual_seed(seed)
        BertModel(config, add_pooling_layer=False).eval().save_pretrained(out, safe_serialization=True)

    return _build_atomically(Path(path), params, build)


def reference_cosine(model_dir: str | os.PathLike, query: str, documents: list[str]) -> list[float]:
    """Cosine similarity of mean-pooled embeddings, written independently of models/embedding.py."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def embed(text: str) -> torch.Tensor:
        inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            hidden = model(**inputs).last_hidden_state[0]
        vector = hidden.mean(dim=0)
        return vector / vector.norm()

    q = embed(query)
    return [float(q @ embed(d)) for d in documents]
