"""GET /v1/models: what a request's `model` field may name, and how many live workers serve each."""

from __future__ import annotations

from typing import Optional

import redis
from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import ReadDep
from api.state import StateDep
from api.errors import ApiError
from api.served_models import live_workers, served_models

router = APIRouter(tags=["models"])


class ModelCard(BaseModel):
    id: str = Field(description="The name to put in a request's `model` field.")
    object: str = "model"
    workers: int = Field(description="Live workers with this model loaded and warm.")
    ready: bool = Field(description="At least one worker serves it now; otherwise its jobs wait in the queue.")
    default: bool = Field(description="Used when a request names no model.")
    revision: Optional[str] = Field(None, description="Model revision its workers run (the most common one).")
    backend: Optional[str] = Field(None, description="Scoring backend (qwen3, seq-cls).")
    score_type: Optional[str] = Field(None, description="What relevance_score means for this model.")
    aliases: list[str] = Field(default_factory=list, description="Other names that mean this model "
                               "(RERANKQ_MODEL_ALIASES, e.g. a Cohere model name).")


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelCard]


@router.get("/v1/models", response_model=ModelList, operation_id="list_models",
            responses={503: {"description": "Redis cannot be reached."}})
def list_models(state: StateDep, _principal: ReadDep) -> ModelList:
    """Models served here: configured ones (RERANKQ_MODEL_NAME, RERANKQ_MODELS) and those of live workers."""
    try:
        workers = live_workers(state.redis)
    except redis.RedisError as error:
        raise ApiError(503, "broker_unavailable", f"worker heartbeats cannot be read: {error}") from error
    aliases = state.settings.model_aliases
    cards = [ModelCard(id=m.id, workers=m.workers, ready=m.ready, default=m.default, revision=m.revision,
                       backend=m.backend, score_type=m.score_type,
                       aliases=sorted(alias for alias, target in aliases.items() if target == m.id))
             for m in served_models(state.settings, workers)]
    return ModelList(data=cards)
