"""Which models this deployment serves: the configured names plus whatever live workers announce.

Each worker serves one model and says which in its heartbeat; the API routes a request to that
model's queues. Configured names (RERANKQ_MODEL_NAME, RERANKQ_MODELS) are accepted even while
no worker runs: their jobs wait, durably queued, for one to start. An alias (RERANKQ_MODEL_ALIASES,
e.g. Cohere's `rerank-v3.5`) is accepted wherever the model it names is, and is replaced by that
model's name before anything is stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

import redis

from core import worker_registry as registry
from core.settings import Settings


@dataclass(frozen=True)
class ServedModel:
    id: str
    workers: int  # live workers with the model loaded and warm
    default: bool  # used when a request names no model
    revision: Optional[str] = None  # what most of its workers run (rolling upgrades may mix)
    backend: Optional[str] = None
    score_type: Optional[str] = None

    @property
    def ready(self) -> bool:
        return self.workers > 0


def live_workers(client: redis.Redis) -> list[dict]:
    """Heartbeats present now (core.worker_registry: O(workers)); one expires after about three missed beats."""
    return registry.live_workers(client)


def ready_models(workers: Iterable[dict]) -> dict[str, list[dict]]:
    by_model: dict[str, list[dict]] = {}
    for worker in workers:
        if worker.get("ready") and worker.get("model"):
            by_model.setdefault(worker["model"], []).append(worker)
    return by_model


def _most_common(workers: list[dict], key: str) -> Optional[str]:
    values = Counter(w.get(key) for w in workers if w.get(key))
    return values.most_common(1)[0][0] if values else None


def served_models(settings: Settings, workers: Iterable[dict]) -> list[ServedModel]:
    """Configured models first (the default one leading), then models only live workers know."""
    by_model = ready_models(workers)
    names = list(dict.fromkeys([*settings.accepted_models, *sorted(by_model)]))
    return [
        ServedModel(id=name, workers=len(by_model.get(name, [])), default=name == settings.served_model,
                    revision=_most_common(by_model.get(name, []), "model_revision"),
                    backend=_most_common(by_model.get(name, []), "backend"),
                    score_type=_most_common(by_model.get(name, []), "score_type"))
        for name in names
    ]


def resolve_model(settings: Settings, name: Optional[str]) -> Optional[str]:
    """The served model a request's `model` field means (an alias names another; None stays None)."""
    return settings.model_aliases.get(name, name) if name is not None else None


def accepted_names(settings: Settings, client: redis.Redis, wanted: Iterable[Optional[str]]) -> list[str]:
    """Model names a request may use: served models, then aliases of them. Redis is asked only when
    a request names a model that is not configured, so the common path costs nothing."""
    names = settings.accepted_models
    if not all(model is None or model in names for model in (resolve_model(settings, m) for m in wanted)):
        try:
            names = [model.id for model in served_models(settings, live_workers(client))]
        except redis.RedisError:
            pass
    aliases = [alias for alias, target in settings.model_aliases.items() if target in names and alias not in names]
    return [*names, *aliases]
