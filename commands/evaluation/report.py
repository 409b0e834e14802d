"""The report: one row per system and one column per metric, then the paired tests, and its JSON form."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from commands.evaluation.measures import Scores
from commands.evaluation.significance import Comparison, paired_test

FIRST_STAGE = "first-stage"


def compare_all(systems: list[tuple[str, Scores]], metrics: list[str]) -> list[Comparison]:
    """Each model against the first stage, then every pair of models (later against earlier)."""
    comparisons = []
    for i, (a_name, a) in enumerate(systems):
        for b_name, b in systems[i + 1:]:
            for metric in metrics:
                comparisons.append(paired_test(a_name, a.per_query[metric], b_name, b.per_query[metric], metric))
    return comparisons


def build_report(dataset: str, queries: int, top_k: Optional[int], systems: list[tuple[str, Optional[str], Scores]],
                 metrics: list[str]) -> dict:
    comparisons = compare_all([(name, scores) for name, _, scores in systems], metrics)
    return {
        "dataset": dataset, "queries": queries, "top_k": top_k,
        "systems": [{"name": name, "revision": revision, "metrics": {m: scores.mean[m] for m in metrics}}
                    for name, revision, scores in systems],
        "comparisons": [asdict(c) for c in comparisons],
    }


def format_report(report: dict) -> str:
    metrics = list(report["systems"][0]["metrics"]) if report["systems"] else []
    width = max([len("system"), *(len(s["name"]) for s in report["systems"])])
    lines = [f"{report['dataset']}: {report['queries']} queries, top {report['top_k']} reranked", "",
             f"{'system':<{width}}  " + "  ".join(f"{m:>9}" for m in metrics)]
    for system in report["systems"]:
        lines.append(f"{system['name']:<{width}}  " + "  ".join(f"{system['metrics'][m]:>9.4f}" for m in metrics))
    if report["comparisons"]:
        lines += ["", "paired t-test over queries (delta = b - a):"]
        for c in report["comparisons"]:
            mark = " *" if c["p_value"] < 0.05 else ""
            lines.append(f"  {c['b']} vs {c['a']}  {c['metric']}: delta {c['delta']:+.4f}, p = {c['p_value']:.4g}{mark}")
        lines.append("  (* p < 0.05)")
    return "\n".join(lines)
