"""Who may scrape the API's /metrics: anyone, or (RERANKQ_METRICS_REQUIRE_KEY) a key with the
metrics scope, since queue depths and job counts describe every tenant's traffic."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import Header, Request

from api.auth import require
from api.state import StateDep

_metrics_scope = require("metrics")


async def metrics_access(request: Request, state: StateDep,
                         authorization: Annotated[Optional[str], Header(include_in_schema=False)] = None) -> None:
    if state.settings.metrics_require_key:
        await _metrics_scope(request, state, authorization)
