"""One evaluation from options to report: collection, first stage, candidates, each model's run, metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Optional

from commands.evaluation.candidates import Candidates, SystemRun
from commands.evaluation.collection import load_beir
from commands.evaluation.measures import DEFAULT_METRICS, Scores, evaluate, parse_metrics
from commands.evaluation.report import FIRST_STAGE, build_report
from commands.evaluation.runs import Run, read_trec_run, sorted_run, write_trec_run


@dataclass
class EvalOptions:
    dataset: Optional[Path] = None
    reviewed: bool = False
    run_path: Optional[Path] = None
    top_k: int = 100
    models: list[str] = field(default_factory=list)  # empty: the served default
    direct: bool = False
    url: Optional[str] = None
    api_key: Optional[str] = None
    metrics: str = DEFAULT_METRICS
    save_run: Optional[Path] = None
    json_path: Optional[Path] = None
    state_dir: Optional[Path] = None
    since: Optional[date] = None
    database_url: Optional[str] = None
    batch_size: int = 16
    concurrency: int = 4
    progress: bool = True


def default_state_dir(options: EvalOptions, dataset: str) -> Path:
    """Next to the first output named, else under ./rerankq-eval-state/."""
    anchor = options.json_path or options.save_run
    if anchor is not None:
        return anchor.with_name(anchor.name + ".state")
    return Path("rerankq-eval-state") / dataset


def score_models(options: EvalOptions, candidates: list[Candidates], state_dir: Path) -> list[SystemRun]:
    runs = []
    chosen: list[Optional[str]] = list(options.models) or [None]  # None: the served default
    for model in chosen:
        if options.direct:
            from commands.evaluation.direct import score_direct

            runs.append(score_direct(model, candidates, progress=options.progress))
        else:
            from commands.evaluation.service import score_service

            runs.append(score_service(model, candidates, state_dir, url=options.url, api_key=options.api_key,
                                      batch_size=options.batch_size, concurrency=options.concurrency,
                                      progress=options.progress))
    return runs


def dataset_candidates(options: EvalOptions) -> tuple[str, list[str], dict, Run, list[Candidates]]:
    assert options.dataset is not None  # run_eval picks this path only with --dataset
    collection = load_beir(options.dataset)
    query_ids = collection.judged_queries
    if options.run_path is not None:
        first = read_trec_run(options.run_path, options.top_k, collection.corpus, collection.queries)
    else:
        from commands.evaluation.first_stage import bm25_run

        first = bm25_run(collection, query_ids, options.top_k)
    first = {q: first[q][: options.top_k] for q in query_ids if first.get(q)}
    candidates = [Candidates(q, collection.queries[q], [d for d, _ in first[q]],
                             [collection.corpus[d] for d, _ in first[q]]) for q in query_ids if q in first]
    return collection.name, query_ids, collection.qrels, first, candidates


def reviewed_candidates(options: EvalOptions) -> tuple[str, list[str], dict, Run, list[Candidates]]:
    from commands.evaluation.reviewed import reviewed_collection
    from core.settings import Settings

    url = options.database_url or Settings().database_url
    candidates, qrels, stored = reviewed_collection(url, options.since)
    return "reviewed", [c.query_id for c in candidates], qrels, sorted_run(stored), candidates


def run_eval(options: EvalOptions) -> dict:
    measures = parse_metrics(options.metrics)
    name, query_ids, qrels, first, candidates = (reviewed_candidates(options) if options.reviewed
                                                 else dataset_candidates(options))
    if not query_ids:
        raise ValueError(f"{name}: no judged queries to evaluate")
    systems: list[tuple[str, Optional[str], Scores]] = [(FIRST_STAGE, None, evaluate(qrels, first, measures, query_ids))]
    reranked: list[Run] = []
    for system in score_models(options, candidates, options.state_dir or default_state_dir(options, name)):
        run = sorted_run(system.scores)
        reranked.append(run)
        systems.append((system.name, system.revision, evaluate(qrels, run, measures, query_ids)))
    top_k = max((len(c.doc_ids) for c in candidates), default=0) if options.reviewed else options.top_k
    report = build_report(name, len(query_ids), top_k, systems, list(measures))
    if options.save_run is not None and reranked:
        write_trec_run(options.save_run, reranked[0], systems[1][0])
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
