"""The Models page: a candidate (shadow or rescored) model against a baseline, with the same figures
as GET /v1/models/compare, charts over time, and the requests where the two disagree most."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from api.dashboard import charts
from api.dashboard.render import page, short_model
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from api.routes.compare import comparison
from core.comparison_timeline import most_disagreeing, timeline
from core.ranking_metrics import kendall_tau, top1
from store.db import session_scope
from store.shadow_jobs import COPY_KINDS
from store.tables import Job

router = APIRouter()
COLORS = ("blue", "violet", "amber", "green", "red", "slate")


def known_models(state) -> list[str]:
    """The served model, the configured shadow models, and every model a copy job was made for."""
    with session_scope(state.settings.database_url) as session:
        copies = session.scalars(select(Job.model).where(Job.kind.in_(COPY_KINDS)).distinct().limit(50))
        return list(dict.fromkeys([state.settings.served_model, *state.settings.shadow_models, *copies]))


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _load(state, owner, params):
    models = known_models(state)
    baseline = (params.get("baseline") or state.settings.served_model)[:300]
    others = [m for m in models if m != baseline]
    candidate = (params.get("candidate") or (others[0] if others else baseline))[:300]
    pairs, result = comparison(state, baseline, candidate, 2000, owner)
    line = timeline(pairs, baseline, candidate, short_model)
    plots = dict(
        ndcg=charts.time_chart(line.days, [charts.Series(label, values, COLORS[i % len(COLORS)])
                                           for i, (label, values) in enumerate(sorted(line.ndcg.items()))],
                               label="nDCG@10 per model revision", x_format="%b %d", y_min_top=1.0),
        agreement=charts.time_chart(line.days, [charts.Series("top-1 agreement", line.agreement, "green"),
                                                charts.Series("mean Kendall tau", line.tau, "blue")],
                                    label="Agreement", y_format=_percent, x_format="%b %d", y_min_top=1.0),
    )
    return dict(models=models, baseline=baseline, candidate=candidate, result=result, plots=plots,
                worst=most_disagreeing(pairs))


@router.get("/dashboard/models", include_in_schema=False)
async def models_page(request: Request, viewer: ReviewerDep, state: StateDep):
    data = await run_in_threadpool(_load, state, viewer.principal.owner_filter, request.query_params)
    return page(request, viewer, "models.html", **data, tau_of=kendall_tau, top_of=top1)
