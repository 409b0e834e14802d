"""The review queue: open cases, filterable by status, reason, model, date and text, sortable, paginated."""

from __future__ import annotations

from datetime import date
from typing import Mapping, Optional
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from api.dashboard.render import page, redirect
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from store.db import session_scope
from store.case_repeats import repeat_counts
from store.review_value import VALUE_SORT, ValueRules, case_values
from store.reviews import CaseQuery, facets, list_cases, review_counts, status_counts

router = APIRouter()

STATUSES = ("open", "reviewed", "dismissed", "all")
FILTER_KEYS = ("status", "reason", "model", "since", "until", "q", "sort")
SORT_LABELS = {VALUE_SORT: "Most useful", "newest": "Newest first", "oldest": "Oldest first", "lowest": "Lowest top score",
               "highest": "Highest top score"}


def _day(value: Optional[str], name: str, problems: list[str]) -> Optional[date]:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{name}: '{value}' is not a date (YYYY-MM-DD); ignored")
        return None


def parse_queue(params: Mapping[str, str], owner: Optional[str], settings=None) -> tuple[CaseQuery, list[str]]:
    """The queue's query from URL parameters; bad values are ignored and reported, never a 500.
    Open cases are sorted most useful first unless another sort is chosen."""
    problems: list[str] = []
    status = params.get("status") or "open"
    if status not in STATUSES:
        problems.append(f"status: '{status}' is not one of {', '.join(STATUSES)}; showing open cases")
        status = "open"
    default_sort = VALUE_SORT if status == "open" else "newest"
    requested_sort = params.get("sort")
    sort = requested_sort if requested_sort is not None and requested_sort in SORT_LABELS else default_sort
    try:
        page_number = min(max(1, int(params.get("page") or 1)), 100_000)
    except ValueError:
        page_number = 1
    query = CaseQuery(status=None if status == "all" else status, reason=params.get("reason") or None,
                      model=params.get("model") or None, since=_day(params.get("since"), "since", problems),
                      until=_day(params.get("until"), "until", problems), text=(params.get("q") or "")[:500] or None,
                      sort=sort, page=page_number, page_size=25, owner=owner,
                      value_rules=ValueRules.from_settings(settings) if settings is not None else None)
    return query, problems


def filter_params(params: Mapping[str, str]) -> dict[str, str]:
    """The queue's filters (not its page), to carry from the queue to a case and back."""
    return {k: params[k] for k in FILTER_KEYS if params.get(k)}


@router.get("/dashboard", include_in_schema=False)
def home(request: Request):
    return redirect(request, "/dashboard/queue")


@router.get("/dashboard/queue", include_in_schema=False)
def queue(request: Request, viewer: ReviewerDep, state: StateDep):
    params = request.query_params
    query, problems = parse_queue(params, viewer.principal.owner_filter, state.settings)
    with session_scope(state.settings.database_url) as session:
        cases, total = list_cases(session, query)
        counts = review_counts(session, [c.id for c in cases])
        assert query.value_rules is not None, "parse_queue sets value rules when given the settings"
        values = case_values(session, cases, query.value_rules)
        repeats = repeat_counts(session, [c.id for c in cases])
        reasons, models = facets(session, query.owner)
        tabs = status_counts(session, query)
    filters = filter_params(params)
    tabs["all"] = sum(tabs.values())
    pages = max(1, -(-total // query.page_size))
    return page(request, viewer, "queue.html", cases=cases, counts=counts, total=total, query=query, pages=pages,
                filters=filters, back=urlencode(filters), problems=problems, reasons=reasons, models=models,
                tabs=tabs, status=params.get("status") if params.get("status") in STATUSES else "open",
                sort_labels=SORT_LABELS, saved=params.get("saved"), values=values, repeats=repeats)
