"""What the API and dashboard add to a case beyond its row: its value parts and its repeats."""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

from sqlalchemy.orm import Session

from core.review_schemas import CaseDetail, CaseSummary, CaseValueView, RepeatView
from store.case_repeats import repeat_counts, repeat_jobs
from store.review_value import ValueRules, case_values
from store.tables import LowConfidenceCase


def annotate(session: Session, cases: Sequence[LowConfidenceCase], summaries: Sequence[CaseSummary],
             rules: ValueRules) -> None:
    """Fill `repeats` and `value` of each summary (same order as `cases`)."""
    values = case_values(session, cases, rules)
    counts = repeat_counts(session, [c.id for c in cases])
    for case, summary in zip(cases, summaries):
        summary.repeats = counts.get(case.id, 1)
        summary.value = CaseValueView(**asdict(values[case.id]))


def annotate_detail(session: Session, case: LowConfidenceCase, detail: CaseDetail, rules: ValueRules) -> CaseDetail:
    annotate(session, [case], [detail], rules)
    detail.repeat_jobs = [RepeatView(**r) for r in repeat_jobs(session, case)]
    return detail
