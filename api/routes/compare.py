"""GET /v1/models/compare: a candidate model against a baseline on the requests both scored."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.auth import ReviewDep
from api.state import StateDep
from core.model_comparison import compare
from store.db import session_scope
from store.model_compare import paired_requests
from core.confidence_rules import ConfidenceRules

router = APIRouter(tags=["models"])


def model_spec(role: str):
    """A fresh Query per parameter (FastAPI keeps the parameter's name on the Query object it is given)."""
    return Query(..., min_length=1, max_length=300, description=f"The {role}: a model name, or `name@revision`.")


class ModelFiguresView(BaseModel):
    model: str
    revisions: list[str] = Field(description="Revisions whose scores were compared.")
    ndcg_at_10: Optional[float] = Field(None, description="Mean nDCG@10 over the reviewed requests (ir-measures), "
                                        "reviewers' combined grades as judgments; null when none is reviewed.")
    n_reviewed: int = Field(description="Requests with reviewed labels.")
    low_confidence_rate: Optional[float] = Field(None, description="Share the low-confidence rules flag "
                                                 "(without the random calibration sample).")
    p95_latency_s: Optional[float] = Field(None, description="95th percentile of the scoring job's "
                                           "created -> finished time.")


class ComparisonView(BaseModel):
    n_requests: int = Field(description="Requests both models scored.")
    top1_agreement: Optional[float] = Field(None, description="Share where both put the same document first.")
    mean_kendall_tau: Optional[float] = Field(None, description="Mean Kendall tau-b (scipy) of the two rankings.")
    n_tau: int = Field(description="Requests where tau is defined (2+ documents, neither ranking constant).")
    baseline: ModelFiguresView
    candidate: ModelFiguresView


def comparison(state, baseline: str, candidate: str, limit: int, owner: Optional[str]):
    settings = state.settings
    baseline, candidate = baseline.replace("\x00", ""), candidate.replace("\x00", "")  # PostgreSQL refuses NUL
    rules = ConfidenceRules.from_settings(settings.model_copy(update={"sample_rate": 0.0}))
    with session_scope(settings.database_url) as session:
        pairs = paired_requests(session, baseline, candidate, limit=limit, owner=owner)
    return pairs, compare(pairs, baseline, candidate, rules)


@router.get("/v1/models/compare", response_model=ComparisonView, operation_id="compare_models")
async def compare_models(state: StateDep, principal: ReviewDep, baseline: str = model_spec("baseline"),
                         candidate: str = model_spec("candidate"),
                         limit: int = Query(2000, ge=1, le=20000, description="Latest requests compared.")):
    """Top-1 agreement, Kendall tau, nDCG@10 on reviewed cases, low-confidence rate and p95 latency of two
    models over the requests both scored (shadow traffic and `rerankq rescore`). Scope `review` or `admin`."""
    _pairs, result = await run_in_threadpool(comparison, state, baseline, candidate, limit, principal.owner_filter)
    return ComparisonView(**asdict(result))
