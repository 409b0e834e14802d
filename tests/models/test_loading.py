"""load_backend: backend choice from config.json, device/dtype, revision, and errors that name the setting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.settings import Settings
from models import ModelLoadError, Pair, load_backend
from models.loading import choose_backend, model_revision, resolve_device, resolve_dtype
from models.qwen3 import Qwen3Reranker
from models.seq_cls import SequenceClassificationReranker

REPO_ROOT = Path(__file__).resolve().parents[2]


def settings(**values) -> Settings:
    return Settings(_env_file=None, device="cpu", **values)


@pytest.mark.parametrize(
    "fixture, backend_cls, backend",
    [
        ("tiny_qwen3", Qwen3Reranker, "qwen3"),
        ("tiny_cross_encoder", SequenceClassificationReranker, "seq-cls"),
        ("tiny_qwen3_seq_cls", SequenceClassificationReranker, "seq-cls"),
    ],
)
@pytest.mark.slow  # loads each tiny model
def test_auto_backend_follows_config(request, fixture, backend_cls, backend):
    model_dir = request.getfixturevalue(fixture)
    loaded = load_backend(settings(model=str(model_dir)))
    assert isinstance(loaded, backend_cls) and loaded.info.backend == backend
    assert not loaded.model.training
    assert loaded.info.name == str(model_dir)
    scores = loaded.score([Pair("capital of France", "Paris"), Pair("capital of France", "")])
    assert len(scores) == 2 and all(0 < s < 1 for s in scores)


def test_auto_dtype_on_cpu_is_float32(tiny_qwen3):
    loaded = load_backend(settings(model=str(tiny_qwen3), dtype="auto"))
    assert (loaded.info.device, loaded.info.dtype) == ("cpu", "float32")
    assert loaded.model.config._attn_implementation == "sdpa"


def test_flash_attention_only_for_half_precision_on_cuda_when_installed(monkeypatch):
    import importlib.util

    import torch

    from models.loading import attention_implementation

    real_find_spec = importlib.util.find_spec
    for installed in (True, False):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: object() if name == "flash_attn" and installed else real_find_spec(name, *a))
        flash = "flash_attention_2" if installed else "sdpa"
        assert attention_implementation("cuda:0", torch.bfloat16) == flash
        assert attention_implementation("cuda", torch.float16) == flash
        assert attention_implementation("cuda", torch.float32) == "sdpa"
        assert attention_implementation("cpu", torch.bfloat16) == "sdpa"


def test_forced_backend_and_activation(tiny_qwen3_seq_cls, tiny_cross_encoder):
    loaded = load_backend(settings(model=str(tiny_qwen3_seq_cls), model_backend="seq-cls"))
    assert isinstance(loaded, SequenceClassificationReranker)
    raw = load_backend(settings(model=str(tiny_cross_encoder), seq_cls_activation="identity"))
    assert raw.info.score_type == "logit"


def test_forcing_a_backend_the_weights_do_not_fit_fails(tiny_qwen3):
    with pytest.raises(ModelLoadError, match="RERANKQ_MODEL_BACKEND"):
        load_backend(settings(model=str(tiny_qwen3), model_backend="seq-cls"))


def test_unknown_architecture_names_the_backend_setting():
    config = SimpleNamespace(model_type="llama", architectures=["LlamaModel"])
    with pytest.raises(ModelLoadError, match="RERANKQ_MODEL_BACKEND"):
        choose_backend(config, "auto")
    assert choose_backend(config, "qwen3") == "qwen3"


def test_missing_directory_names_the_model_setting(tmp_path):
    with pytest.raises(ModelLoadError, match="RERANKQ_MODEL") as info:
        load_backend(settings(model=str(tmp_path / "nope")))
    assert "no such directory" in str(info.value)


def test_unreachable_hub_names_the_model_setting(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    with pytest.raises(ModelLoadError, match="RERANKQ_MODEL") as info:
        load_backend(settings(model="rerankq-tests/not-a-cached-model", model_revision="v1"))
    assert "'rerankq-tests/not-a-cached-model'" in str(info.value) and "'v1'" in str(info.value)


def test_device_and_dtype_resolution():
    import torch

    if not torch.cuda.is_available():
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ModelLoadError, match="RERANKQ_DEVICE"):
            resolve_device("cuda")
    assert resolve_dtype("auto", "cpu") is torch.float32
    assert resolve_dtype("bfloat16", "cpu") is torch.bfloat16


def test_revision_prefers_commit_then_setting_then_local_fingerprint(tiny_qwen3, tiny_cross_encoder):
    no_commit = SimpleNamespace(_commit_hash=None)
    assert model_revision(settings(model="x"), SimpleNamespace(_commit_hash="abc123")) == "abc123"
    assert model_revision(settings(model="x", model_revision="v2"), no_commit) == "v2"
    first = model_revision(settings(model=str(tiny_qwen3)), no_commit)
    assert first.startswith("local-") and first == model_revision(settings(model=str(tiny_qwen3)), no_commit)
    assert first != model_revision(settings(model=str(tiny_cross_encoder)), no_commit)


def test_a_retrained_checkpoint_of_the_same_shape_gets_a_new_revision(tiny_qwen3, tmp_path):
    no_commit = SimpleNamespace(_commit_hash=None)
    copy = Path(shutil.copytree(tiny_qwen3, tmp_path / "model"))  # copy2 keeps modification times
    revision = model_revision(settings(model=str(copy)), no_commit)
    assert revision == model_revision(settings(model=str(tiny_qwen3)), no_commit)
    weights = next(p for p in copy.iterdir() if p.suffix == ".safetensors")
    size, mtime_ns = weights.stat().st_size, weights.stat().st_mtime_ns
    weights.write_bytes(bytes(reversed(weights.read_bytes())))  # other weights, same size
    os.utime(weights, ns=(mtime_ns + 10**9, mtime_ns + 10**9))
    assert weights.stat().st_size == size
    retrained = model_revision(settings(model=str(copy)), no_commit)
    assert retrained.startswith("local-") and retrained != revision


def test_importing_models_does_not_import_torch():
    code = "import sys, models; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_max_length_below_the_prompt_is_a_load_error(tiny_qwen3):
    with pytest.raises(ModelLoadError, match="RERANKQ_MAX_LENGTH"):
        load_backend(settings(model=str(tiny_qwen3), max_length=16))
