"""Turn the model settings into a ready ScoringBackend: device, dtype, backend choice, weights.

torch and transformers are imported inside the functions, so `import models` stays cheap for the
API and CLI processes that never load a model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from models.base import ScoringBackend

if TYPE_CHECKING:
    from core.settings import Settings

T = TypeVar("T")

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class ModelLoadError(RuntimeError):
    """The configured model could not be loaded; the message names the setting to change."""


def resolve_device(setting: str) -> str:
    """auto: cuda when a GPU is visible, else cpu; an explicit cuda without a GPU fails early."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"RERANKQ_DEVICE={setting} but CUDA is not available; use cpu or auto")
    return setting


def resolve_dtype(setting: str, device: str) -> Any:
    """auto: bfloat16 on GPUs that support it (else float16), float32 on CPU, where half is slow."""
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    if not device.startswith("cuda"):
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def choose_backend(config: Any, requested: str = "auto") -> str:
    """The backend named in settings, or the one config.json's architecture calls for."""
    if requested != "auto":
        return requested
    architectures = getattr(config, "architectures", None) or []
    if config.model_type == "qwen3" and any(a.endswith("ForCausalLM") for a in architectures):
        return "qwen3"
    if any("ForSequenceClassification" in a for a in architectures):
        return "seq-cls"
    raise ModelLoadError(
        f"cannot tell which scoring backend fits model_type={config.model_type!r}, "
        f"architectures={architectures}: set RERANKQ_MODEL_BACKEND to qwen3 or seq-cls"
    )


def load_backend(settings: "Settings") -> ScoringBackend:
    """Load the configured model onto its device, in eval mode, behind the matching backend."""
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    config = _hub_call(settings, "config", lambda: _auto("AutoConfig").from_pretrained(**_source(settings)))
    backend = choose_backend(config, settings.model_backend)
    tokenizer = _hub_call(settings, "tokenizer", lambda: _load_tokenizer(settings, backend))
    model = _hub_call(settings, "weights", lambda: _load_model(settings, backend, dtype, device))
    common = dict(
        max_length=settings.max_length, name=settings.model, revision=model_revision(settings, config),
        device=device, dtype=str(dtype).removeprefix("torch."),
    )
    try:
        return _make_backend(backend, tokenizer, model.eval().to(device), settings, common)
    except ValueError as exc:  # the backends' own checks: yes/no tokens, head size, max_length
        raise ModelLoadError(f"model {settings.model!r} cannot serve as a {backend} reranker: {exc}") from exc


def _make_backend(
    backend: str, tokenizer: Any, model: Any, settings: "Settings", common: dict
) -> ScoringBackend:
    if backend == "qwen3":
        from models.qwen3 import Qwen3Reranker

        return Qwen3Reranker(tokenizer, model, prefix_reuse=settings.prefix_reuse,
                             long_document_mode=settings.long_document_mode,
                             max_windows=settings.long_document_max_windows, **common)
    from models.seq_cls import SequenceClassificationReranker

    return SequenceClassificationReranker(tokenizer, model, activation=settings.seq_cls_activation, **common)


def model_revision(settings: "Settings", config: Any) -> str:
    """What a stored score is traced back to: the hub commit when known, else the pinned revision,
    else a short fingerprint of a local directory (config.json bytes, weight file sizes and mtimes)."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return commit
    if settings.model_revision:
        return settings.model_revision
    path = Path(settings.model)
    return f"local-{_fingerprint(path)}" if path.is_dir() else "unknown"


def _fingerprint(path: Path) -> str:
    # Sizes alone miss a retrained checkpoint of the same shape; the modification time catches it
    # without reading gigabytes of weights (a copy that keeps mtimes, e.g. rsync -t, keeps the revision).
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES):
        stat = weights.stat()
        digest.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def _auto(name: str) -> Any:
    import transformers

    return getattr(transformers, name)


def _source(settings: "Settings") -> dict:
    return {"pretrained_model_name_or_path": settings.model, "revision": settings.model_revision or None}


def _load_tokenizer(settings: "Settings", backend: str) -> Any:
    # Left padding keeps the last position real for causal scoring; the seq-cls backend pads itself.
    padding = {"padding_side": "left"} if backend == "qwen3" else {}
    return _auto("AutoTokenizer").from_pretrained(**_source(settings), **padding)


def attention_implementation(device: str, dtype: Any) -> str:
    """flash_attention_2 for half precision on CUDA when the flash_attn package is installed,
    else PyTorch SDPA (which picks its own fused kernel on CUDA)."""
    import importlib.util

    import torch

    half = dtype in (torch.float16, torch.bfloat16)
    if device.startswith("cuda") and half and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def _load_model(settings: "Settings", backend: str, dtype: Any, device: str = "cpu") -> Any:
    """Weights in `dtype` with flash-attention or SDPA where the architecture has it.

    Missing weights are an error, not a warning: a causal checkpoint loaded as a classifier (or
    the reverse) would otherwise score with a freshly initialised head."""
    cls = _auto("AutoModelForCausalLM" if backend == "qwen3" else "AutoModelForSequenceClassification")
    kwargs = dict(_source(settings), dtype=dtype, output_loading_info=True)
    attention = attention_implementation(device, dtype)
    try:
        model, info = cls.from_pretrained(**kwargs, attn_implementation=attention)
    except (ValueError, ImportError) as exc:
        if attention not in str(exc) and "scaled_dot_product" not in str(exc) and "flash" not in str(exc):
            raise
        model, info = cls.from_pretrained(**kwargs)
    if info.get("missing_keys"):
        raise ModelLoadError(
            f"model {settings.model!r} lacks weights the {backend} backend needs "
            f"({sorted(info['missing_keys'])[:5]}...): check RERANKQ_MODEL_BACKEND"
        )
    return model


def _hub_call(settings: "Settings", what: str, load: Callable[[], T]) -> T:
    """Run one from_pretrained step, turning "not found / hub unreachable" into a ModelLoadError."""
    try:
        return load()
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"could not load the {what} of model {settings.model!r} ({_revision_text(settings)}): "
            f"{_cause(settings, exc)}. Set RERANKQ_MODEL to a local directory holding the model, or make "
            "the Hugging Face hub reachable (RERANKQ_MODEL_REVISION pins a revision; "
            "RERANKQ_MODEL_BACKEND forces a backend)."
        ) from exc


def _revision_text(settings: "Settings") -> str:
    return f"revision {settings.model_revision!r}" if settings.model_revision else "default revision"


def _cause(settings: "Settings", exc: Exception) -> str:
    """A path-looking setting that is not a directory is reported as such, not as a bad repo id."""
    model = settings.model
    if model.startswith(("/", ".", "~")) and not Path(model).expanduser().is_dir():
        return "no such directory"
    return str(exc).strip().rstrip(".")
