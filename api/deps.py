"""Per-app shared objects (settings, broker, Redis clients) and their FastAPI dependency aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import Depends, Request

from core.settings import Settings


@dataclass
class AppState:
    settings: Settings
    celery: Celery
    redis: redis.Redis
    aioredis: aioredis.Redis


def get_state(request: Request) -> AppState:
    return request.app.state.rerankq


StateDep = Annotated[AppState, Depends(get_state)]
