"""The degraded-fallback scorer: cosine similarity of mean-pooled embeddings, through the real loader."""

from __future__ import annotations

import pytest

from core.settings import Settings
from models.base import Pair
from models.embedding import BACKEND, SCORE_TYPE, load_embedding_backend
from models.loading import ModelLoadError
from tests.support.tiny_embedding import build_tiny_embedding_model, reference_cosine


@pytest.fixture(scope="module")
def embedding_dir(models_dir):
    return build_tiny_embedding_model(models_dir / "tiny-embedding")


@pytest.fixture(scope="module")
def backend(embedding_dir):
    return load_embedding_backend(Settings(fallback_model=str(embedding_dir), device="cpu"))


def test_scores_are_the_cosine_of_mean_pooled_embeddings(backend, embedding_dir):
    docs = ["Paris is the capital of France.", "The quick brown fox.", "machine learning models rank documents"]
    pairs = [Pair("capital of france", d) for d in docs] + [Pair("python language", "Python is a language")]
    scores = backend.score(pairs)
    expected = reference_cosine(embedding_dir, "capital of france", docs)
    expected += reference_cosine(embedding_dir, "python language", ["Python is a language"])
    assert max(abs(s - e) for s, e in zip(scores, expected)) < 1e-5
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_identity_info_and_no_instruction(backend, embedding_dir):
    assert backend.info.backend == BACKEND and backend.info.score_type == SCORE_TYPE
    assert backend.info.name == str(embedding_dir) and backend.info.revision.startswith("local-")
    assert backend.default_instruction() is None
    with_instruction = backend.score([Pair("capital", "Paris is the capital", instruction="anything")])
    assert with_instruction == backend.score([Pair("capital", "Paris is the capital")])


def test_max_tokens_per_doc_cuts_the_document(backend, embedding_dir):
    long_doc = "Paris is the capital of France. " * 5
    cut = backend.encode([Pair("q", long_doc, max_tokens_per_doc=3)])[0]
    full = backend.encode([Pair("q", long_doc)])[0]
    assert cut.length < full.length and cut.length <= 3 + 2  # [CLS] ... [SEP]


def test_missing_setting_is_named():
    with pytest.raises(ModelLoadError, match="RERANKQ_FALLBACK_MODEL"):
        load_embedding_backend(Settings(fallback_model=""))
