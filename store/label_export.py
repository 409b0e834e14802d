"""Reviewed cases as JSONL training data: cross-encoder pairs, graded pairs, or {query, pos, neg} groups.

Only cases with at least one `reviewed` review are exported, and only those reviews count
(a dismissal is not a label). Where several people reviewed a case, each document gets the
majority label, and the line says how many reviewers labelled it and what share agreed.
A `groups` line needs a positive and a negative, so a case lacking either is left out of that
format (its documents still appear in `pairs` and `graded`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Sequence

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from core.review_schemas import RELEVANT_GRADE, CaseStatus, Decision
from store.db import session_scope
from store.reviews import model_order
from store.tables import Job, LowConfidenceCase, Review, utcnow

FORMATS = ("pairs", "graded", "groups")
BATCH = 200


@dataclass(frozen=True)
class DocumentLabel:
    """The reviewers' combined judgement of one document."""

    index: int
    grade: int  # the median of all grades; of two middle ones, the upper if `label` is 1, else the lower
    label: int  # 1 relevant (grade >= 2) by majority; a tie goes to the mean grade
    agreement: float  # share of its reviewers whose relevant/not-relevant call matches `label`
    n_reviewers: int


def combine(grades: Sequence[int]) -> tuple[int, int, float]:
    """(grade, label, agreement) from one document's grades, one per reviewer who graded it."""
    votes = [g >= RELEVANT_GRADE for g in grades]
    relevant = sum(votes)
    if relevant * 2 != len(votes):
        label = int(relevant * 2 > len(votes))
    else:
        label = int(sum(grades) / len(grades) >= RELEVANT_GRADE)
    ordered = sorted(grades)
    grade = ordered[len(ordered) // 2] if label else ordered[(len(ordered) - 1) // 2]
    agreement = sum(1 for v in votes if int(v) == label) / len(votes)
    return grade, label, round(agreement, 4)


def document_labels(reviews: Sequence[Review]) -> dict[int, DocumentLabel]:
    grades: dict[int, list[int]] = {}
    for review in reviews:
        for index, grade in review.labels.items():
            grades.setdefault(int(index), []).append(int(grade))
    labels: dict[int, DocumentLabel] = {}
    for document, values in grades.items():
        grade, label, agreement = combine(values)
        labels[document] = DocumentLabel(document, grade, label, agreement, len(values))
    return labels


def case_lines(case: LowConfidenceCase, reviews: Sequence[Review], fmt: str) -> list[dict]:
    """The JSONL objects one reviewed case contributes in `fmt`."""
    labels = document_labels(reviews)
    order = [i for i in model_order(case.scores) if i in labels]
    common = dict(instruction=case.instruction, model=case.model, model_revision=case.model_revision,
                  case_id=case.id)
    if fmt == "groups":
        best = Counter(r.best_index for r in reviews if r.best_index is not None)
        rank = {index: position for position, index in enumerate(order)}
        pos = sorted((i for i in order if labels[i].label),
                     key=lambda i: (-best.get(i, 0), -labels[i].grade, rank[i]))
        neg = [i for i in order if not labels[i].label]
        if not pos or not neg:  # {query, pos, neg} trainers need at least one of each to build a group
            return []
        agreement = sum(labels[i].agreement for i in order) / len(order)
        return [dict(query=case.query, pos=[case.documents[i] for i in pos], neg=[case.documents[i] for i in neg],
                     **common, agreement=round(agreement, 4), n_reviewers=len(reviews))]
    lines = []
    for index in order:
        label = labels[index]
        value = {"label": label.label} if fmt == "pairs" else {"grade": label.grade}
        lines.append(dict(query=case.query, document=case.documents[index], **value, **common, doc_index=index,
                          score=case.scores[index], agreement=label.agreement, n_reviewers=label.n_reviewers))
    return lines


def export_page(session: Session, fmt: str, after_id: int, owner: Optional[str] = None,
                model: Optional[str] = None, exported: Optional[list[int]] = None) -> tuple[list[dict], Optional[int]]:
    """One keyset page: the exported objects of the next BATCH reviewed cases with id > after_id,
    and the last case id read (None when there were none); the ids of the cases exported are appended
    to `exported`."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    statement = select(LowConfidenceCase).where(LowConfidenceCase.status == CaseStatus.reviewed.value,
                                                LowConfidenceCase.id > after_id)
    if owner is not None:
        statement = statement.join(Job, Job.id == LowConfidenceCase.job_id).where(Job.owner == owner)
    if model:
        statement = statement.where(LowConfidenceCase.model == model)
    cases = list(session.scalars(statement.order_by(LowConfidenceCase.id).limit(BATCH)))
    if not cases:
        return [], None
    reviews: dict[int, list[Review]] = {}
    for review in session.scalars(select(Review).where(Review.case_id.in_([c.id for c in cases]),
                                                       Review.decision == Decision.reviewed.value)
                                  .order_by(Review.id)):
        reviews.setdefault(review.case_id, []).append(review)
    lines = [line for case in cases if reviews.get(case.id) for line in case_lines(case, reviews[case.id], fmt)]
    if exported is not None:
        exported.extend(c.id for c in cases if reviews.get(c.id))
    return lines, cases[-1].id


def iter_export(session: Session, fmt: str, owner: Optional[str] = None, model: Optional[str] = None,
                exported: Optional[list[int]] = None) -> Iterator[dict]:
    """Every exported object, case by case in id order, reading the store in bounded batches
    (the ids of the cases read are appended to `exported`)."""
    last_id = 0
    while True:
        lines, next_id = export_page(session, fmt, last_id, owner, model, exported)
        if next_id is None:
            return
        last_id = next_id
        yield from lines


def iter_jsonl(database_url: str, fmt: str, owner: Optional[str] = None, model: Optional[str] = None) -> Iterator[str]:
    """Lines of JSON text, each ending in a newline (for streaming responses and files).

    Each page is read in its own short transaction, closed before its lines are handed on, so a
    slow download holds no transaction (and no connection) open between pages. Once the last line
    was handed on, the cases exported are marked (case retention deletes reviewed cases only then)."""
    exported: list[int] = []
    started = utcnow()
    last_id = 0
    while True:
        with session_scope(database_url) as session:
            lines, next_id = export_page(session, fmt, last_id, owner, model, exported)
        if next_id is None:
            break
        last_id = next_id
        for item in lines:
            yield json.dumps(item, ensure_ascii=False) + "\n"
    mark_exported(database_url, exported, started)


def mark_exported(database_url: str, case_ids: list[int], started: datetime) -> None:
    """Record a finished export (an aborted one never gets here), in short transactions of their own so a
    slow reader never holds a write lock: case retention deletes reviewed cases only after this. A case
    reviewed again since the export started is left unmarked: its new labels are in no export yet."""
    relabelled = exists().where(Review.case_id == LowConfidenceCase.id, Review.updated_at >= started)
    for start in range(0, len(case_ids), 500):
        with session_scope(database_url) as session:
            session.execute(update(LowConfidenceCase)
                            .where(LowConfidenceCase.id.in_(case_ids[start:start + 500]), ~relabelled)
                            .values(exported_at=utcnow()))


def write_export(database_url: str, fmt: str, path: Path, model: Optional[str] = None) -> int:
    """Write the export to `path` (through a temporary file, so a failure leaves no half file); returns lines."""
    count = 0
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as out:
        for line in iter_jsonl(database_url, fmt, model=model):
            out.write(line)
            count += 1
    partial.replace(path)
    return count
