"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api import served_models
from api.state import StateDep
from api.probe_detail import failure
from store.db import get_engine

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


def live_workers(state) -> list[dict]:
    return served_models.live_workers(state.redis)


@router.get("/readyz", operation_id="readyz")
def readyz(state: StateDep):
    """Ready when the database and Redis answer and at least one worker has its model loaded. A failed
    check names the error's kind only: its message names hosts and ports (the API log has it)."""
    checks: dict = {}
    try:
        with get_engine(state.settings.database_url).connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["database"] = failure("database", error)
    try:
        state.redis.ping()
        checks["redis"] = "ok"
        workers = [w for w in live_workers(state) if w.get("ready")]
        checks["workers"] = len(workers)
        checks["models"] = sorted({w["model"] for w in workers})
    except Exception as error:  # noqa: BLE001
        checks["redis"] = failure("redis", error)
        checks["workers"] = 0
    ready = checks["database"] == "ok" and checks["redis"] == "ok" and checks["workers"] > 0
    return JSONResponse({"status": "ready" if ready else "not_ready", **checks}, status_code=200 if ready else 503)
