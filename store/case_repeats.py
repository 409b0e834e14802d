"""Collapse identical requests into one review case instead of flooding the queue.

A request is identical to a case when the model, normalized query, instruction and document set
match (store/query_keys.case_key). The first one becomes the case; later ones are rows in
case_repeats, so the case shows a count and the list of their jobs. The case_key column is
unique, so two workers flagging the same request at once still make one case: the loser's
insert is ignored and it records a repeat instead.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from store.query_keys import case_key
from store.tables import CaseRepeat, LowConfidenceCase, utcnow

Insert = Callable[[object, list[dict]], object]  # (table, rows) -> insert ignoring duplicates; result unused


def insert_cases(session: Session, rows: list[dict], insert: Insert) -> None:
    """Insert new cases; a row whose key already has a case becomes that case's repeat. A few set-based
    statements whatever the number of rows: the worker's group commit flags many jobs in one transaction."""
    for row in rows:
        row["case_key"] = case_key(row["model"], row["query"], row["instruction"], row["documents"])
    insert(LowConfidenceCase.__table__, rows)
    keys = [(row["job_id"], row["request_idx"]) for row in rows]
    own = set(session.execute(select(LowConfidenceCase.job_id, LowConfidenceCase.request_idx)
                              .where(tuple_(LowConfidenceCase.job_id, LowConfidenceCase.request_idx).in_(keys))).all())
    repeats = [row for row in rows if (row["job_id"], row["request_idx"]) not in own]
    if not repeats:
        return
    first = dict(session.execute(select(LowConfidenceCase.case_key, LowConfidenceCase.id)
                                 .where(LowConfidenceCase.case_key.in_({row["case_key"] for row in repeats}))).all())
    now = utcnow()
    found = [dict(case_id=first[row["case_key"]], job_id=row["job_id"], request_idx=row["request_idx"], created_at=now)
             for row in repeats if row["case_key"] in first]
    if found:
        insert(CaseRepeat.__table__, found)


def repeat_counts(session: Session, case_ids: list[int]) -> dict[int, int]:
    """How many requests each case stands for (itself plus its repeats)."""
    if not case_ids:
        return {}
    rows = session.execute(select(CaseRepeat.case_id, func.count()).where(CaseRepeat.case_id.in_(case_ids))
                           .group_by(CaseRepeat.case_id))
    counts = {case_id: 1 for case_id in case_ids}
    for case_id, n in rows:
        counts[case_id] += n
    return counts


def repeat_jobs(session: Session, case: LowConfidenceCase) -> list[dict]:
    """The case's own request first, then each repeat, oldest first."""
    rows = session.execute(select(CaseRepeat.job_id, CaseRepeat.request_idx, CaseRepeat.created_at)
                           .where(CaseRepeat.case_id == case.id).order_by(CaseRepeat.created_at, CaseRepeat.id))
    return [dict(job_id=case.job_id, request_idx=case.request_idx, created_at=case.created_at),
            *(dict(job_id=j, request_idx=r, created_at=c) for j, r, c in rows)]
