"""Label export for people logged in to the dashboard (the same JSONL as GET /v1/reviews/export)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.dashboard.render import DashboardError
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from store.label_export import FORMATS, iter_jsonl

router = APIRouter()


@router.get("/dashboard/export", include_in_schema=False)
def export(request: Request, viewer: ReviewerDep, state: StateDep):
    fmt = request.query_params.get("format", "pairs")
    if fmt not in FORMATS:
        raise DashboardError(400, "Unknown export format", f"format: '{fmt}' is not one of {', '.join(FORMATS)}.")
    lines = iter_jsonl(state.settings.database_url, fmt, owner=viewer.principal.owner_filter,
                       model=request.query_params.get("model") or None)
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="labels-{fmt}.jsonl"'})
