"""Assemble the FastAPI app: routers, error handlers, body limit, metrics."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Optional

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI

from api import metrics
from api.body_limit import BodyLimitMiddleware
from api.deps import AppState
from api.errors import install_error_handlers
from api.dashboard import install_dashboard
from api.routes import compare, health, jobs, models, reviews, rerank
from core.settings import Settings, get_settings
from workers.queue import make_celery


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = AppState(
            settings=settings,
            celery=make_celery(settings),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=10),
            aioredis=aioredis.Redis.from_url(settings.redis_url),
        )
        app.state.rerankq = state
        yield
        await state.aioredis.aclose()
        state.redis.close()

    app = FastAPI(
        title="rerankq",
        version="0.1.0",
        description="Async, queue-based rerank service with a Cohere-compatible API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(metrics.HttpMetricsMiddleware)  # outermost: counts the body limit's 413s too
    for module in (rerank, jobs, health, models, compare, metrics, reviews):
        app.include_router(module.router)
    install_dashboard(app, settings)
    return app
