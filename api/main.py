"""Assemble the FastAPI app: routers, error handlers, body limit, metrics."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Optional

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI

from api import metrics
from api.body_limit import BodyLimitMiddleware
from api.body_scan import BodyScanMiddleware
from api.db_errors import install_database_error_handler
from api.state import AppState
from api.early_auth import EarlyAuthMiddleware
from api.errors import install_error_handlers
from api.job_waiters import JobWaiters
from api.security_headers import SecurityHeadersMiddleware
from api.wait_metrics import count_database_queries
from api.dashboard import install_dashboard
from api.routes import compare, health, jobs, models, reviews, rerank
from api.url_text import UrlTextMiddleware
from core.secret_key_check import refuse_weak_secret
from core.settings import Settings, get_settings
from core.queue import make_celery


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_weak_secret(settings)  # before anything listens: a guessable secret forges sessions

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        waiters = JobWaiters(settings.redis_url, settings.database_url, settings.wait_recheck_s)
        state = AppState(
            settings=settings,
            celery=make_celery(settings),
            redis=redis.Redis.from_url(settings.redis_url, socket_timeout=10),
            aioredis=aioredis.Redis.from_url(settings.redis_url),
            waiters=waiters,
        )
        app.state.rerankq = state
        waiters.start()
        yield
        await waiters.stop()
        await state.aioredis.aclose()
        state.redis.close()

    app = FastAPI(
        title="rerankq",
        version="0.1.0",
        description="Async, queue-based rerank service with a Cohere-compatible API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    count_database_queries()
    install_database_error_handler(app)
    # Innermost first: limits counted while the body is parsed, its size, the key before any of it.
    app.add_middleware(BodyScanMiddleware, settings=settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(EarlyAuthMiddleware)
    app.add_middleware(UrlTextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outside every early refusal (413, 401, 422): they carry them too
    app.add_middleware(metrics.HttpMetricsMiddleware)  # outermost: counts the body limit's 413s too
    for module in (rerank, jobs, health, models, compare, metrics, reviews):
        app.include_router(module.router)
    install_dashboard(app, settings)
    return app
