"""The API's scope rules, applied to dashboard pages: a page that shows what an API endpoint returns
needs that endpoint's scope (job results need `read`, as `GET /v1/jobs/{id}` does), so the dashboard
never gives a key more than the API would."""

from __future__ import annotations

from api.dashboard.render import DashboardError
from api.dashboard.session import Viewer

READ_JOBS = "read"


def require_scope(viewer: Viewer, scope: str, what: str) -> None:
    """403 page unless the viewer's key carries `scope` (admin carries every scope)."""
    if not viewer.can(scope):
        raise DashboardError(403, "Not allowed", f"The key '{viewer.principal.name}' lacks the '{scope}' scope, "
                             f"which {what} needs (as the API asks for it); ask for a key with {scope} (or admin).")
