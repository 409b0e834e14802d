"""`rerankq eval --reviewed`: the store's reviewed cases are the collection. Its qrels are the label
export's merged grades, its first stage is the stored model order, and each model re-scores the same
candidates; two models are also compared with each other."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import pytrec_eval
from sqlalchemy import update

from commands.evaluation.pipeline import EvalOptions, run_eval
from store.db import session_scope
from store.label_export import iter_jsonl
from store.migrate import upgrade
from store.reviews import get_case, save_review
from store.tables import LowConfidenceCase, utcnow
from tests.support.model_card_reference import reference_scores
from tests.support.scored_jobs import store_scored_job

CASES = [
    ("which city is the capital of France", ["Lyon is known for its food.", "Paris is the capital of France.",
                                             "The Eiffel Tower is in Paris.", "Berlin is in Germany."],
     [0.41, 0.40, 0.39, 0.05], [{0: 0, 1: 3, 2: 1}, {0: 1, 1: 2, 2: 2, 3: 0}]),
    ("what is gravity", ["Apples fall.", "Gravity attracts masses.", "Quantum physics studies atoms."],
     [0.30, 0.29, 0.10], [{0: 1, 1: 3, 2: 0}]),
    ("how is coffee made", ["Tea is made from leaves.", "Coffee is brewed from roasted beans.", "Espresso uses pressure."],
     [0.45, 0.44, 0.20], [{1: 3, 2: 2, 0: 0}, {1: 2, 2: 1, 0: 0}, {1: 3, 2: 2, 0: 1}]),
]


def flag_all(scores):
    return ["low_top_score"]


@pytest.fixture()
def reviewed_store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    store_scored_job(url, "served", [(q, docs, scores) for q, docs, scores, _ in CASES], flag_all)
    store_scored_job(url, "served", [("unreviewed query", ["a", "b"], [0.2, 0.1])], flag_all)  # stays open
    with session_scope(url) as session:
        for case_id, (_, _, _, reviews) in enumerate(CASES, start=1):
            case = get_case(session, case_id)
            for n, labels in enumerate(reviews):
                save_review(session, case, reviewer=f"r{n}", reviewer_name=f"r{n}", labels=labels, best_index=None,
                            note=None, decision="reviewed")
    return url


def test_reviewed_cases_are_the_collection(reviewed_store, tiny_qwen3, tiny_cross_encoder, tmp_path):
    models = [str(tiny_qwen3), str(tiny_cross_encoder)]
    report = run_eval(EvalOptions(reviewed=True, database_url=reviewed_store, models=models, direct=True,
                                  progress=False, metrics="nDCG@10,AP", save_run=tmp_path / "run.trec"))
    assert report["dataset"] == "reviewed" and report["queries"] == len(CASES) and report["top_k"] == 4
    assert [s["name"] for s in report["systems"]] == ["first-stage", *models]

    # The qrels: the graded export's merged grades, case by case.
    qrels: dict = {}
    for line in iter_jsonl(reviewed_store, "graded"):
        item = json.loads(line)
        qrels.setdefault(f"case-{item['case_id']}", {})[str(item["doc_index"])] = item["grade"]
    stored = {f"case-{i}": {str(d): s for d, s in enumerate(scores)} for i, (_, _, scores, _) in enumerate(CASES, 1)}
    qwen = {}
    for i, (query, docs, _, _) in enumerate(CASES, start=1):
        qwen[f"case-{i}"] = dict(zip(map(str, range(len(docs))), reference_scores(tiny_qwen3, [(None, query, d)
                                                                                             for d in docs])))
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map"})
    for name, run in (("first-stage", stored), (str(tiny_qwen3), qwen)):
        values = evaluator.evaluate(run)
        system = next(s for s in report["systems"] if s["name"] == name)
        assert system["metrics"]["nDCG@10"] == pytest.approx(sum(v["ndcg_cut_10"] for v in values.values()) / 3)
        assert system["metrics"]["AP"] == pytest.approx(sum(v["map"] for v in values.values()) / 3)
    pairs = {(c["a"], c["b"]) for c in report["comparisons"]}
    assert pairs == {("first-stage", models[0]), ("first-stage", models[1]), (models[0], models[1])}
    assert len(report["comparisons"]) == 6
    saved = {}
    for line in (tmp_path / "run.trec").read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        saved.setdefault(qid, {})[doc] = float(score)
    assert set(saved) == set(qwen)
    for query_id, scores in qwen.items():
        assert saved[query_id] == pytest.approx(scores, abs=1e-5)


def test_since_keeps_only_recent_cases(reviewed_store, tiny_qwen3):
    with session_scope(reviewed_store) as session:
        session.execute(update(LowConfidenceCase).where(LowConfidenceCase.id == 1)
                        .values(created_at=utcnow() - timedelta(days=10)))
    since = (utcnow() - timedelta(days=1)).date()
    report = run_eval(EvalOptions(reviewed=True, database_url=reviewed_store, models=[str(tiny_qwen3)], direct=True,
                                  progress=False, since=since))
    assert report["queries"] == 2
