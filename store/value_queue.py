"""The review queue sorted by value (store/review_value.py): values are computed per view over
the filtered cases (the newest MAX_CANDIDATES), since frequency and shadow disagreement change
after a case is made."""

from __future__ import annotations

from typing import Callable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.review_value import MAX_CANDIDATES, CaseValue, ValueRules, by_value, case_values
from store.tables import LowConfidenceCase


def ordered(session: Session, query, filtered: Callable) -> tuple[list[LowConfidenceCase], dict[int, CaseValue]]:
    statement = filtered(select(LowConfidenceCase), query).order_by(LowConfidenceCase.id.desc()).limit(MAX_CANDIDATES)
    cases = list(session.scalars(statement))
    values = case_values(session, cases, query.value_rules or ValueRules())
    return by_value(cases, values), values


def list_by_value(session: Session, query, filtered: Callable) -> tuple[list[LowConfidenceCase], int]:
    total = session.scalar(filtered(select(func.count()).select_from(LowConfidenceCase), query)) or 0
    cases, _values = ordered(session, query, filtered)
    size = max(1, min(query.page_size, 200))
    start = (max(query.page, 1) - 1) * size
    return cases[start:start + size], total


def next_by_value(session: Session, query, filtered: Callable, current: LowConfidenceCase) -> Optional[int]:
    """The open case after `current` in value order, wrapping round to the most useful one."""
    cases, _values = ordered(session, query, filtered)
    ids = [c.id for c in cases if c.id != current.id]
    if not ids:
        return None
    position = next((i for i, c in enumerate(cases) if c.id == current.id), None)
    if position is None:
        return ids[0]
    after = [c.id for c in cases[position + 1:]]
    return after[0] if after else ids[0]
