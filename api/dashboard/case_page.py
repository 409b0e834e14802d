"""One case: the query, the documents in model order, and the review form; a review opens the next case."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from api.dashboard.form_numbers import form_int
from api.dashboard.queue_page import filter_params, parse_queue
from api.dashboard.render import DashboardError, check_csrf, page, redirect
from api.dashboard.session import ReviewerDep, Viewer
from api.state import AppState, StateDep
from core.review_schemas import Decision
from store.case_repeats import repeat_jobs
from store.db import session_scope
from store.reviewer_privacy import FOREIGN_NAME, foreign_reviewers
from store.review_value import case_values
from store.reviews import (
    ReviewInputError,
    case_reviews,
    check_review,
    get_case,
    model_order,
    next_open_case,
    reviewer_for,
    save_review,
    status_counts,
)

router = APIRouter()
PREVIEW_CHARS = 1200
CaseId = Path(..., ge=1, le=2**31 - 1)


def _documents(case) -> list[dict[str, Any]]:
    scores = case.scores
    lo, hi = min(min(scores), 0.0), max(max(scores), 1.0)
    return [dict(index=i, rank=rank, score=scores[i], text=case.documents[i],
                 long=len(case.documents[i]) > PREVIEW_CHARS, bar=round((scores[i] - lo) / ((hi - lo) or 1) * 100, 1))
            for rank, i in enumerate(model_order(scores), start=1)]


def _load(state: AppState, viewer: Viewer, case_id: int, filters: dict[str, str]) -> dict[str, Any]:
    me, _name = reviewer_for(viewer.principal.key_id, viewer.principal.name)
    query, _problems = parse_queue(filters, viewer.principal.owner_filter, state.settings)
    with session_scope(state.settings.database_url) as session:
        case = get_case(session, case_id, viewer.principal.owner_filter)
        if case is None:
            raise DashboardError(404, "Case not found",
                                 f"There is no case #{case_id} (or it belongs to another tenant).")
        reviews = case_reviews(session, case.id)
        foreign = foreign_reviewers(session, [r.reviewer for r in reviews], viewer.principal.owner_filter)
        open_left = status_counts(session, query).get("open", 0)
        assert query.value_rules is not None, "parse_queue sets value rules when given the settings"
        value = case_values(session, [case], query.value_rules)[case.id]
        repeats = repeat_jobs(session, case)
    mine = next((r for r in reviews if r.reviewer == me), None)
    others: dict[int, list[tuple[str, int]]] = {}
    for review in reviews:
        if review is not mine:
            for index, grade in review.labels.items():
                name = FOREIGN_NAME if review.reviewer in foreign else review.reviewer_name
                others.setdefault(int(index), []).append((name, grade))
    return dict(case=case, documents=_documents(case), reviews=reviews, foreign=foreign, FOREIGN_NAME=FOREIGN_NAME,
                mine=mine, others=others, open_left=open_left, value=value, repeats=repeats)


def _form_of(review) -> dict[str, Any]:
    if review is None:
        return dict(grades={}, best=None, note="", unlabelled_zero=True)
    return dict(grades={int(k): v for k, v in review.labels.items()}, best=review.best_index, note=review.note or "",
                unlabelled_zero=False)


@router.get("/dashboard/cases/{case_id}", include_in_schema=False)
async def case_page(request: Request, viewer: ReviewerDep, state: StateDep, case_id: int = CaseId):
    filters = filter_params(request.query_params)
    data = await run_in_threadpool(_load, state, viewer, case_id, filters)
    return page(request, viewer, "case.html", **data, form=_form_of(data["mine"]), filters=filters,
                back=urlencode(filters), error=None, saved=request.query_params.get("saved"))


def _shown(value) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:20] + "…"


def _parse_form(form, n_documents: int) -> tuple[dict[int, int], Optional[int], str, str, bool]:
    """Grades, best, note, decision and the 'unlabelled are not relevant' box from the posted form."""
    grades: dict[int, int] = {}
    for index in range(n_documents):
        value = form.get(f"grade_{index}")
        if value not in (None, ""):
            grade = form_int(value)
            if grade is None:
                raise ReviewInputError(f"labels.{index}", f"labels.{index}: grade '{_shown(value)}' is not a number "
                                       "0..3", 3)
            grades[index] = grade
    best_raw = form.get("best")
    best = form_int(best_raw)
    if best_raw not in (None, "") and best is None:
        raise ReviewInputError("best_index", f"best_index: '{_shown(best_raw)}' is not a document index")
    decision = form.get("decision") or Decision.reviewed.value
    if decision not in (Decision.reviewed.value, Decision.dismissed.value):
        raise ReviewInputError("decision", f"decision: '{decision}' is not reviewed or dismissed")
    return grades, best, str(form.get("note") or "")[:5000], decision, form.get("unlabelled_zero") == "1"


def _save(state: AppState, viewer: Viewer, case_id: int, form, filters: dict[str, str]) -> tuple[Optional[int], Any]:
    """Save the review and find the next case; returns (next case id, None) or (None, form + error) to re-show."""
    reviewer, name = reviewer_for(viewer.principal.key_id, viewer.principal.name)
    query, _problems = parse_queue(filters, viewer.principal.owner_filter, state.settings)
    with session_scope(state.settings.database_url) as session:
        case = get_case(session, case_id, viewer.principal.owner_filter)
        if case is None:
            raise DashboardError(404, "Case not found", f"There is no case #{case_id}.")
        n_documents = len(case.documents)
        try:
            grades, best, note, decision, unlabelled_zero = _parse_form(form, n_documents)
            if unlabelled_zero and decision == Decision.reviewed.value:
                grades = {i: grades.get(i, 0) for i in range(n_documents)}
            labels = check_review(n_documents, grades, best, decision)
        except ReviewInputError as error:
            draft = dict(grades={i: form_int(form.get(f"grade_{i}")) for i in range(n_documents)
                                 if form_int(form.get(f"grade_{i}")) is not None},
                         best=form_int(form.get("best")),
                         note=str(form.get("note") or ""), unlabelled_zero=form.get("unlabelled_zero") == "1")
            return None, (draft, error.message)
        save_review(session, case, reviewer=reviewer, reviewer_name=name, labels=labels, best_index=best, note=note,
                    decision=decision)
        return next_open_case(session, query, case), None


@router.post("/dashboard/cases/{case_id}/review", include_in_schema=False)
async def submit_review(request: Request, viewer: ReviewerDep, state: StateDep, case_id: int = CaseId):
    form = await request.form()
    check_csrf(request, viewer, form.get("csrf_token"))
    filters = filter_params(request.query_params)
    next_id, problem = await run_in_threadpool(_save, state, viewer, case_id, form, filters)
    if problem is not None:
        draft, message = problem
        data = await run_in_threadpool(_load, state, viewer, case_id, filters)
        return page(request, viewer, "case.html", status_code=422, **data, form=draft, filters=filters,
                    back=urlencode(filters), error=message, saved=None)
    target = f"/dashboard/cases/{next_id}" if next_id is not None else "/dashboard/queue"
    return redirect(request, f"{target}?{urlencode({**filters, 'saved': case_id})}", viewer)


@router.get("/dashboard/cases/{case_id}/skip", include_in_schema=False)
def skip(request: Request, viewer: ReviewerDep, state: StateDep, case_id: int = CaseId):
    """The next open case without saving anything (or the queue when there is none)."""
    filters = filter_params(request.query_params)
    query, _problems = parse_queue(filters, viewer.principal.owner_filter, state.settings)
    with session_scope(state.settings.database_url) as session:
        case = get_case(session, case_id, viewer.principal.owner_filter)
        if case is None:
            raise DashboardError(404, "Case not found", f"There is no case #{case_id}.")
        next_id = next_open_case(session, query, case)
    target = f"/dashboard/cases/{next_id}" if next_id is not None else "/dashboard/queue"
    return redirect(request, f"{target}?{urlencode(filters)}" if filters else target, viewer)
