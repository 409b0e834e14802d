"""Metrics in ir-measures notation (nDCG@10, RR@10, R@100, AP ...), computed by ir-measures with
trec_eval's conventions: never hand-written. Per-query values feed the significance tests.
The computation itself is core.ranking_metrics.per_query, the one the model comparison uses too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ir_measures

from commands.evaluation import DEFAULT_METRICS
from commands.evaluation.runs import Run
from core import ranking_metrics


class MetricError(ValueError):
    pass


@dataclass(frozen=True)
class Scores:
    mean: dict[str, float]  # metric name as given -> mean over the evaluated queries
    per_query: dict[str, dict[str, float]]  # metric name -> query id -> value


def parse_metrics(text: str) -> dict[str, object]:
    """{name as the user wrote it: ir-measures measure}; an unknown name is an error naming it."""
    measures: dict[str, Any] = {}
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        try:
            measures[name] = ir_measures.parse_measure(name)
        except (ValueError, NameError, SyntaxError, TypeError, AttributeError) as error:
            raise MetricError(f"--metrics: {name!r} is not an ir-measures measure ({error}); "
                              f"e.g. {DEFAULT_METRICS}") from None
    if not measures:
        raise MetricError(f"--metrics: no measure given; e.g. {DEFAULT_METRICS}")
    return measures


def evaluate(qrels: dict[str, dict[str, int]], run: Run, measures: dict[str, Any],
             query_ids: list[str]) -> Scores:
    """Per-query and mean values over `query_ids` (every judged query with candidates); a query the
    system returned nothing for counts as 0, as trec_eval -c does, so all systems share one query set."""
    wanted = set(query_ids)
    qrels = {q: docs for q, docs in qrels.items() if q in wanted}
    scored = {q: {doc: float(score) for doc, score in ranked} for q, ranked in run.items() if q in wanted}
    found = ranking_metrics.per_query(measures.values(), qrels, scored)
    values = {name: {q: 0.0 for q in query_ids} | found[measure] for name, measure in measures.items()}
    mean = {name: (sum(v.values()) / len(v) if v else 0.0) for name, v in values.items()}
    return Scores(mean, values)
