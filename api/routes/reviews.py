"""The review API: list and read low-confidence cases, review them, export the labels as JSONL.

It does what the dashboard does, for other tools (labelling bridges, notebooks, CI checks).
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Optional

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.auth import ReviewDep
from api.deps import OwnedCase, SessionDep
from api.state import StateDep
from api.errors import ApiError
from core.review_schemas import CaseDetail, CaseList, ReviewCreate
from store.case_annotations import annotate, annotate_detail
from store.review_value import ValueRules
from store.label_export import iter_jsonl
from store.reviewer_privacy import hide_foreign_reviewers
from store.reviews import (
    MAX_PAGE_SIZE,
    CaseQuery,
    ReviewInputError,
    case_detail,
    case_reviews,
    case_summary,
    check_review,
    list_cases,
    review_counts,
    reviewer_for,
    save_review,
)

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])

Status = Literal["open", "reviewed", "dismissed", "all"]
Sort = Literal["value", "newest", "oldest", "lowest", "highest"]
ExportFormat = Literal["pairs", "graded", "groups"]
MAX_PAGE = 100_000


@router.get("", response_model=CaseList, operation_id="list_cases")
def list_(state: StateDep, session: SessionDep, principal: ReviewDep, status: Status = "open",
          reason: Optional[str] = Query(None, max_length=40), model: Optional[str] = Query(None, max_length=200),
          since: Optional[date] = None, until: Optional[date] = None,
          q: Optional[str] = Query(None, max_length=500, description="Text in the query or instruction, or a job id."),
          sort: Optional[Sort] = Query(None, description="value: most useful first (the default for open cases; "
                                       "see each case's `value`); otherwise newest first by default."),
          page: int = Query(1, ge=1, le=MAX_PAGE), page_size: int = Query(25, ge=1, le=MAX_PAGE_SIZE)):
    """Low-confidence cases, filtered, sorted and paginated (open cases most useful first by default)."""
    rules = ValueRules.from_settings(state.settings)
    query = CaseQuery(status=None if status == "all" else status, reason=reason, model=model, since=since,
                      until=until, text=q, sort=sort or ("value" if status == "open" else "newest"), page=page,
                      page_size=page_size, owner=principal.owner_filter, value_rules=rules)
    cases, total = list_cases(session, query)
    counts = review_counts(session, [c.id for c in cases])
    items = [case_summary(c, counts.get(c.id, 0)) for c in cases]
    annotate(session, cases, items, rules)
    return CaseList(items=items, total=total, page=page, page_size=page_size)


@router.get("/export", operation_id="export_labels",
            responses={200: {"content": {"application/x-ndjson": {}},
                             "description": "One JSON object per line; see the README's Review loop section."}})
def export(state: StateDep, principal: ReviewDep, format: ExportFormat = "pairs",
           model: Optional[str] = Query(None, max_length=200)):
    """Reviewed cases as JSONL training data: `pairs` (0/1 labels), `graded` (0-3) or `groups` ({query, pos, neg})."""
    lines = iter_jsonl(state.settings.database_url, format, owner=principal.owner_filter, model=model)
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"Content-Disposition": f'attachment; filename="labels-{format}.jsonl"'})


@router.get("/{case_id}", response_model=CaseDetail, operation_id="get_case",
            responses={404: {"description": "No such case."}})
def read(case: OwnedCase, session: SessionDep, state: StateDep, principal: ReviewDep):
    """One case: query, instruction, documents in model order with scores, and its reviews."""
    return _detail(session, case, principal, state)


@router.post("/{case_id}", response_model=CaseDetail, operation_id="review_case",
             responses={404: {"description": "No such case."}, 422: {"description": "Invalid labels."}})
def review(body: ReviewCreate, case: OwnedCase, session: SessionDep, state: StateDep, principal: ReviewDep):
    """Save the caller's review of a case (again: replaces theirs); the case becomes reviewed or dismissed."""
    reviewer, reviewer_name = reviewer_for(principal.key_id, principal.name, body.reviewer)
    try:
        labels = check_review(len(case.documents), body.labels, body.best_index, body.decision.value)
    except ReviewInputError as error:
        raise ApiError(422, "invalid_review", error.message, field=error.field, limit=error.limit) from error
    save_review(session, case, reviewer=reviewer, reviewer_name=reviewer_name, labels=labels,
                best_index=body.best_index, note=body.note, decision=body.decision.value)
    return _detail(session, case, principal, state)


def _detail(session, case, principal, state) -> CaseDetail:
    """The case with its reviews and value components; other tenants' reviewers (an admin, say) under a pseudonym."""
    detail = annotate_detail(session, case, case_detail(case, case_reviews(session, case.id)),
                             ValueRules.from_settings(state.settings))
    return hide_foreign_reviewers(session, detail, principal.owner_filter)
