"""The review side of the store: find low-confidence cases, read one, save a reviewer's judgement.

Used by the review API and the dashboard alike, so both see the same filters, order and rules.
A case is visible to a caller when it belongs to the caller's tenant (`owner`), or to everyone
when `owner` is None (admins, or access control off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional, Sequence

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from core.review_schemas import (
    RELEVANT_GRADE,
    CaseDetail,
    CaseDocument,
    CaseStatus,
    CaseSummary,
    Decision,
    ReviewView,
)
from store.tables import Job, LowConfidenceCase, Review, utcnow

SORTS: dict[str, tuple[Any, ...]] = {
    "newest": (LowConfidenceCase.created_at.desc(), LowConfidenceCase.id.desc()),
    "oldest": (LowConfidenceCase.created_at.asc(), LowConfidenceCase.id.asc()),
    "lowest": (LowConfidenceCase.top_score.asc(), LowConfidenceCase.id.desc()),
    "highest": (LowConfidenceCase.top_score.desc(), LowConfidenceCase.id.desc()),
}
MAX_PAGE_SIZE = 200
MAX_GRADE = 3


@dataclass(frozen=True)
class CaseQuery:
    """What the review queue shows: filters, order and page."""

    status: Optional[str] = CaseStatus.open.value  # None: any status
    reason: Optional[str] = None
    model: Optional[str] = None
    since: Optional[date] = None  # created on or after this UTC day
    until: Optional[date] = None  # created on or before this UTC day
    text: Optional[str] = None  # in the query or instruction, or an exact job id
    sort: str = "newest"
    page: int = 1
    page_size: int = 25
    owner: Optional[str] = None
    value_rules: Optional[Any] = None  # store/review_value.ValueRules for sort="value" (default rules if None)


class ReviewInputError(ValueError):
    """A review that cannot be saved, naming the field and the limit it broke."""

    def __init__(self, field: str, message: str, limit: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.limit = limit


def model_order(scores: Sequence[float]) -> list[int]:
    """Document indexes best first; equal scores keep submission order (as the API ranks them)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def clean_text(text: str) -> str:
    """Text as every database stores it: no NUL characters (PostgreSQL refuses them)."""
    return text.replace("\x00", "")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(statement: Select, query: CaseQuery) -> Select:
    case = LowConfidenceCase
    if query.owner is not None:
        statement = statement.join(Job, Job.id == case.job_id).where(Job.owner == query.owner)
    if query.status:
        statement = statement.where(case.status == query.status)
    if query.reason:
        # Any of the case's reasons, not only the first: reasons are fixed identifiers stored as a JSON list.
        statement = statement.where(cast(case.reasons, String).like(_like(f'"{query.reason}"'), escape="\\"))
    if query.model:
        statement = statement.where(case.model == query.model)
    if query.since:
        statement = statement.where(case.created_at >= datetime.combine(query.since, time(), timezone.utc))
    if query.until and query.until < date.max:
        end = datetime.combine(query.until + timedelta(days=1), time(), timezone.utc)
        statement = statement.where(case.created_at < end)
    if query.text and clean_text(query.text).strip():
        text = clean_text(query.text).strip()
        pattern = _like(text)
        statement = statement.where(or_(case.query.ilike(pattern, escape="\\"),
                                        case.instruction.ilike(pattern, escape="\\"), case.job_id == text))
    return statement


def list_cases(session: Session, query: CaseQuery) -> tuple[list[LowConfidenceCase], int]:
    """One page of cases in the query's order, and how many match in all."""
    if query.sort == "value":
        from store.value_queue import list_by_value

        return list_by_value(session, query, _filtered)
    total = session.scalar(_filtered(select(func.count()).select_from(LowConfidenceCase), query)) or 0
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    statement = _filtered(select(LowConfidenceCase), query).order_by(*SORTS.get(query.sort, SORTS["newest"]))
    rows = session.scalars(statement.offset((max(query.page, 1) - 1) * size).limit(size))
    return list(rows), total


def next_open_case(session: Session, query: CaseQuery, current: LowConfidenceCase) -> Optional[int]:
    """The case a reviewer should see after `current`: the next open one in the queue's order,
    wrapping round to the first (so skipped cases come back, and a skip never loops on two cases)."""
    if query.sort == "value":
        from store.value_queue import next_by_value

        return next_by_value(session, replace(query, status=CaseStatus.open.value), _filtered, current)
    case = LowConfidenceCase
    key = {"newest": (case.created_at, current.created_at, False),
           "oldest": (case.created_at, current.created_at, True),
           "lowest": (case.top_score, current.top_score, True),
           "highest": (case.top_score, current.top_score, False)}
    column, value, ascending = key.get(query.sort, key["newest"])
    tie = case.id > current.id if query.sort == "oldest" else case.id < current.id
    later = or_(column > value if ascending else column < value, and_(column == value, tie))
    statement = _filtered(select(case.id), replace(query, status=CaseStatus.open.value)).where(case.id != current.id)
    order = SORTS.get(query.sort, SORTS["newest"])
    found = session.scalars(statement.where(later).order_by(*order).limit(1)).first()
    return found if found is not None else session.scalars(statement.order_by(*order).limit(1)).first()


def review_counts(session: Session, case_ids: Sequence[int]) -> dict[int, int]:
    if not case_ids:
        return {}
    rows = session.execute(select(Review.case_id, func.count()).where(Review.case_id.in_(case_ids))
                           .group_by(Review.case_id))
    return {case_id: count for case_id, count in rows}


FACET_CASES = 5000


def facets(session: Session, owner: Optional[str] = None) -> tuple[list[str], list[str]]:
    """Reasons and models seen in the latest FACET_CASES cases, for the queue's filter menus: bounded work
    on a store of any size (a filter typed into the URL still finds older cases)."""
    recent = (_filtered(select(LowConfidenceCase.reasons, LowConfidenceCase.model), CaseQuery(status=None, owner=owner))
              .order_by(LowConfidenceCase.id.desc()).limit(FACET_CASES).subquery())
    as_text = cast(recent.c.reasons, String)  # PostgreSQL's json type has no equality for DISTINCT
    reasons: set[str] = set()
    for (values,) in session.execute(select(as_text).distinct().limit(200)):
        reasons.update(json.loads(values) if values else [])
    models = session.scalars(select(recent.c.model).distinct().order_by(recent.c.model).limit(50))
    return sorted(reasons), list(models)


def get_case(session: Session, case_id: int, owner: Optional[str] = None) -> Optional[LowConfidenceCase]:
    case = session.get(LowConfidenceCase, case_id)
    if case is None or (owner is not None and session.scalar(select(Job.owner).where(Job.id == case.job_id)) != owner):
        return None
    return case


def case_reviews(session: Session, case_id: int) -> list[Review]:
    return list(session.scalars(select(Review).where(Review.case_id == case_id).order_by(Review.created_at, Review.id)))


def check_review(n_documents: int, labels: dict[int, int], best_index: Optional[int], decision: str) -> dict[int, int]:
    """The labels to store, or ReviewInputError naming the first bad field. The best document
    counts as relevant: unlabelled it gets grade 3, and grading it below 2 is a contradiction."""
    labels = dict(labels)
    for index, grade in sorted(labels.items()):
        if not 0 <= index < n_documents:
            raise ReviewInputError(f"labels.{index}", f"labels.{index}: document index out of range; this case has "
                                   f"{n_documents} documents (0..{n_documents - 1})", limit=n_documents - 1)
        if not 0 <= grade <= MAX_GRADE:
            raise ReviewInputError(f"labels.{index}", f"labels.{index}: grade {grade} is outside 0..{MAX_GRADE}",
                                   limit=MAX_GRADE)
    if best_index is not None:
        if not 0 <= best_index < n_documents:
            raise ReviewInputError("best_index", f"best_index: {best_index} is out of range; this case has "
                                   f"{n_documents} documents (0..{n_documents - 1})", limit=n_documents - 1)
        if labels.setdefault(best_index, MAX_GRADE) < RELEVANT_GRADE:
            raise ReviewInputError("best_index", f"best_index: document {best_index} is graded "
                                   f"{labels[best_index]}; the best document must be graded {RELEVANT_GRADE} or more",
                                   limit=RELEVANT_GRADE)
    if decision == Decision.reviewed.value and not labels:
        raise ReviewInputError("labels", "labels: a reviewed case needs at least one graded document "
                               "(dismiss it instead if it is not worth labelling)")
    return labels


def save_review(session: Session, case: LowConfidenceCase, *, reviewer: str, reviewer_name: str,
                labels: dict[int, int], best_index: Optional[int], note: Optional[str], decision: str) -> Review:
    """Insert or replace this reviewer's review (labels already checked), then update the case's status.

    The case row is locked first, so reviews of one case are saved one after another and each
    computes the status from every review committed before it: two concurrent reviews can no longer
    each see only their own and leave "dismissed" over someone's "reviewed"."""
    lock_case(session, case.id)
    reviewer, reviewer_name = clean_text(reviewer), clean_text(reviewer_name)
    values = dict(labels={str(k): int(v) for k, v in sorted(labels.items())}, best_index=best_index,
                  note=clean_text(note or "").strip() or None, decision=decision, reviewer_name=reviewer_name,
                  updated_at=utcnow())
    review = _own_review(session, case.id, reviewer)
    if review is None:
        try:
            with session.begin_nested():
                review = Review(case_id=case.id, reviewer=reviewer, created_at=values["updated_at"], **values)
                session.add(review)
        except IntegrityError:  # the same reviewer saved twice at once: keep the later one
            review = _own_review(session, case.id, reviewer)
    assert review is not None, "a concurrent save's row exists once its IntegrityError is raised"
    for key, value in values.items():
        setattr(review, key, value)
    session.flush()
    case.status = case_status([r.decision for r in case_reviews(session, case.id)])
    case.exported_at = None  # changed labels: retention keeps the case until an export has them
    session.flush()
    return review


def lock_case(session: Session, case_id: int) -> None:
    """Row lock on the case until the transaction ends (PostgreSQL; SQLite has one writer anyway)."""
    session.execute(select(LowConfidenceCase.id).where(LowConfidenceCase.id == case_id).with_for_update())


def _own_review(session: Session, case_id: int, reviewer: str) -> Optional[Review]:
    return session.scalars(select(Review).where(Review.case_id == case_id, Review.reviewer == reviewer)).first()


def case_status(decisions: Sequence[str]) -> str:
    """Reviewed as soon as anyone labelled it; dismissed only when everyone who looked dismissed it."""
    if Decision.reviewed.value in decisions:
        return CaseStatus.reviewed.value
    return CaseStatus.dismissed.value if decisions else CaseStatus.open.value


def status_counts(session: Session, query: CaseQuery) -> dict[str, int]:
    """Cases per status under the query's other filters (the queue's tabs)."""
    statement = _filtered(select(LowConfidenceCase.status, func.count()), replace(query, status=None))
    return {status: count for status, count in session.execute(statement.group_by(LowConfidenceCase.status))}


def reviewer_for(key_id: Optional[str], key_name: str, name: Optional[str] = None) -> tuple[str, str]:
    """(stored reviewer, display name). A name given by a tool is kept under the calling key's id,
    so one key can record several people but never write over another key's reviews."""
    name = (name or "").strip() or None
    if key_id is None:  # access control off
        return name or "anonymous", name or "anonymous"
    return (f"{key_id}/{name}", name) if name else (key_id, key_name)


def case_summary(case: LowConfidenceCase, n_reviews: int) -> CaseSummary:
    return CaseSummary(id=case.id, job_id=case.job_id, request_idx=case.request_idx, status=CaseStatus(case.status),
                       reason=case.reason, reasons=list(case.reasons), query=case.query, instruction=case.instruction,
                       model=case.model, model_revision=case.model_revision, score_type=case.score_type,
                       top_score=case.top_score, n_documents=len(case.documents), n_reviews=n_reviews,
                       created_at=case.created_at)


def case_detail(case: LowConfidenceCase, reviews: Sequence[Review]) -> CaseDetail:
    documents = [CaseDocument(index=i, rank=rank, score=case.scores[i], text=case.documents[i])
                 for rank, i in enumerate(model_order(case.scores), start=1)]
    views = [ReviewView(reviewer=r.reviewer, reviewer_name=r.reviewer_name,
                        labels={int(k): v for k, v in r.labels.items()}, best_index=r.best_index, note=r.note,
                        decision=Decision(r.decision), created_at=r.created_at, updated_at=r.updated_at)
             for r in reviews]
    return CaseDetail(**case_summary(case, len(reviews)).model_dump(), documents=documents, reviews=views)
