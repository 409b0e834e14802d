"""Per-app shared objects (settings, broker, Redis clients, the job waiters) and their dependency alias."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import Depends, Request

from core.settings import Settings

if TYPE_CHECKING:
    from api.job_waiters import JobWaiters


@dataclass
class AppState:
    settings: Settings
    celery: Celery
    redis: redis.Redis
    aioredis: aioredis.Redis
    waiters: Optional["JobWaiters"] = None  # wakes requests waiting for a job (api.job_waiters)


def get_state(request: Request) -> AppState:
    return request.app.state.rerankq


StateDep = Annotated[AppState, Depends(get_state)]
