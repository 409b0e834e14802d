"""`--reviewed`: the store's reviewed cases as a test collection. Each case is a query; its documents in
model order are the candidates (the stored order is the "first-stage" system); the reviewers' grades,
merged exactly as the label export merges them (store.label_export.document_labels), are the qrels."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

from sqlalchemy import select

from commands.evaluation.candidates import Candidates
from core.review_schemas import CaseStatus, Decision
from store.db import session_scope
from store.label_export import document_labels
from store.reviews import model_order
from store.tables import LowConfidenceCase, Review

BATCH = 200


def reviewed_collection(database_url: str, since: Optional[date] = None, model: Optional[str] = None
                        ) -> tuple[list[Candidates], dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """(candidates, qrels, the stored scores as the first-stage run) of every reviewed case, by case id."""
    candidates, qrels, stored = [], {}, {}
    last_id = 0
    with session_scope(database_url) as session:
        while True:
            statement = select(LowConfidenceCase).where(LowConfidenceCase.status == CaseStatus.reviewed.value,
                                                        LowConfidenceCase.id > last_id)
            if since is not None:
                start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
                statement = statement.where(LowConfidenceCase.created_at >= start)
            if model:
                statement = statement.where(LowConfidenceCase.model == model)
            cases = list(session.scalars(statement.order_by(LowConfidenceCase.id).limit(BATCH)))
            if not cases:
                break
            reviews: dict[int, list[Review]] = {}
            for review in session.scalars(select(Review).where(Review.case_id.in_([c.id for c in cases]),
                                                               Review.decision == Decision.reviewed.value)):
                reviews.setdefault(review.case_id, []).append(review)
            for case in cases:
                labels = document_labels(reviews.get(case.id, []))
                if not labels:
                    continue
                query_id = f"case-{case.id}"
                order = model_order(case.scores)
                doc_ids = [str(i) for i in order]
                candidates.append(Candidates(query_id, case.query, doc_ids, [case.documents[i] for i in order],
                                             case.instruction))
                qrels[query_id] = {str(i): label.grade for i, label in labels.items()}
                stored[query_id] = {str(i): float(case.scores[i]) for i in order}
            last_id = cases[-1].id
    return candidates, qrels, stored
