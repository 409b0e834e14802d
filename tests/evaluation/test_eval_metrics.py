"""`rerankq eval` on a small BEIR collection: its figures equal an independent computation (the model
card's reference scorer ranks the candidates, pytrec_eval measures them, scipy tests them), and every
bad input line is reported with its file and line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytrec_eval
from scipy.stats import ttest_rel
from typer.testing import CliRunner

from commands.cli import app
from commands.evaluation.collection import document_text
from commands.evaluation.pipeline import EvalOptions, run_eval
from tests.evaluation.beir_fixture import TOPICS, write_collection, write_run
from tests.support.model_card_reference import reference_scores

PYTREC = {"nDCG@10": "ndcg_cut_10", "RR@10": "recip_rank", "R@100": "recall_100", "AP": "map"}


def read_files(root: Path, run_path: Path):
    """The inputs read plainly, independent of commands.evaluation."""
    corpus = {}
    for line in (root / "corpus.jsonl").read_text().splitlines():
        doc = json.loads(line)
        corpus[doc["_id"]] = f"{doc['title']} {doc['text']}" if doc.get("title") else doc["text"]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (root / "queries.jsonl").read_text().splitlines())}
    qrels: dict = {}
    for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, grade = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(grade)
    run: dict = {}
    for line in run_path.read_text().splitlines():
        qid, _, did, _, score, _ = line.split()
        run.setdefault(qid, {})[did] = float(score)
    return corpus, queries, qrels, run


def pytrec_per_query(qrels, run) -> dict[str, dict[str, float]]:
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recip_rank", "recall.100", "map"})
    values = evaluator.evaluate(run)
    return {name: {q: values[q][key] for q in qrels} for name, key in PYTREC.items()}


def test_metrics_equal_reference_scorer_and_pytrec_eval(tmp_path, tiny_qwen3):
    root = write_collection(tmp_path / "beir")
    run_path = write_run(tmp_path / "first.trec")
    report = run_eval(EvalOptions(dataset=root, run_path=run_path, top_k=5, models=[str(tiny_qwen3)], direct=True,
                                  progress=False, json_path=tmp_path / "report.json", save_run=tmp_path / "out.trec"))
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["queries"] == len(TOPICS) and report["top_k"] == 5
    assert [s["name"] for s in report["systems"]] == ["first-stage", str(tiny_qwen3)]

    corpus, queries, qrels, first = read_files(root, run_path)
    # The model card's own procedure scores each query's candidates; its ranking is the reranked run.
    reranked = {}
    for qid, docs in first.items():
        ids = list(docs)
        scores = reference_scores(tiny_qwen3, [(None, queries[qid], corpus[d]) for d in ids])
        reranked[qid] = dict(zip(ids, scores))
    saved = {}
    for line in (tmp_path / "out.trec").read_text().splitlines():
        qid, _, did, _, score, _ = line.split()
        saved.setdefault(qid, {})[did] = float(score)
    for qid in reranked:
        assert saved[qid] == pytest.approx(reranked[qid], abs=1e-5)
        assert sorted(saved[qid], key=saved[qid].get) == sorted(reranked[qid], key=reranked[qid].get)

    expected = {"first-stage": pytrec_per_query(qrels, first), str(tiny_qwen3): pytrec_per_query(qrels, reranked)}
    for system in report["systems"]:
        for metric, value in system["metrics"].items():
            per_query = expected[system["name"]][metric]
            assert value == pytest.approx(sum(per_query.values()) / len(per_query), abs=1e-9), (system["name"], metric)
    for comparison in report["comparisons"]:
        a, b = expected[comparison["a"]][comparison["metric"]], expected[comparison["b"]][comparison["metric"]]
        xs, ys = [a[q] for q in sorted(a)], [b[q] for q in sorted(a)]
        assert comparison["delta"] == pytest.approx((sum(ys) - sum(xs)) / len(xs), abs=1e-9)
        if xs != ys:
            assert comparison["p_value"] == pytest.approx(ttest_rel(ys, xs).pvalue, rel=1e-9)
    assert len(report["comparisons"]) == 4  # one model against the first stage, per metric
    # The first stage put every topic's best document last, so reranking with any judged signal moved metrics.
    assert expected["first-stage"]["RR@10"] != expected[str(tiny_qwen3)]["RR@10"]


def test_documents_carry_their_title(tmp_path):
    from commands.evaluation.collection import load_beir

    collection = load_beir(write_collection(tmp_path / "beir"))
    assert collection.corpus["capital-0"] == document_text("Capital", TOPICS["capital"][1][0])
    assert collection.corpus["capital-0"] == "Capital " + TOPICS["capital"][1][0]
    assert collection.corpus["capital-1"] == TOPICS["capital"][1][1]


def test_bm25_first_stage_without_a_run(tmp_path):
    from commands.evaluation.collection import load_beir
    from commands.evaluation.first_stage import bm25_run

    collection = load_beir(write_collection(tmp_path / "beir"))
    run = bm25_run(collection, collection.judged_queries, top_k=3)
    assert set(run) == set(collection.judged_queries)
    assert all(len(ranked) <= 3 for ranked in run.values())
    assert run["q-coffee"][0][0].startswith("coffee-")  # lexical overlap puts a coffee document first


def _corrupt(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("target, line, text, message", [
    ("corpus.jsonl", 3, '{"_id": "capital-2", "text": ', "not JSON"),
    ("corpus.jsonl", 5, '{"_id": "gravity-0"}', '"text" must be a string'),
    ("queries.jsonl", 2, '["q-gravity", "What is gravity?"]', "expected a JSON object"),
    ("qrels/test.tsv", 4, "q-capital\tcapital-2", "expected 3 tab-separated fields"),
    ("qrels/test.tsv", 6, "q-gravity\tgravity-1\thigh", "is not an integer"),
    ("qrels/test.tsv", 7, "q-nope\tgravity-1\t1", "not in queries.jsonl"),
    ("first.trec", 8, "q-gravity Q0 gravity-1 3", "expected 6 fields"),
    ("first.trec", 9, "q-gravity Q0 missing-doc 4 6 bm25", "not in corpus.jsonl"),
    ("first.trec", 2, "q-capital Q0 capital-2 two 9 bm25", "must be an integer"),
])
def test_a_bad_line_is_reported_with_its_file_and_line(tmp_path, target, line, text, message):
    root = write_collection(tmp_path / "beir")
    run_path = write_run(root / "first.trec")
    _corrupt(root / target, line, text)
    result = CliRunner().invoke(app, ["eval", "--dataset", str(root), "--run", str(run_path), "--direct",
                                      "--no-progress"])
    assert result.exit_code == 2, result.output
    assert f"{root / target}:{line}: " in result.output
    assert message in result.output


def test_unknown_metric_is_named(tmp_path):
    root = write_collection(tmp_path / "beir")
    result = CliRunner().invoke(app, ["eval", "--dataset", str(root), "--direct", "--metrics", "nDCG@10,Bogus@3"])
    assert result.exit_code == 2
    assert "'Bogus@3' is not an ir-measures measure" in result.output


def test_a_model_that_cannot_load_is_named(tmp_path):
    root = write_collection(tmp_path / "beir")
    run_path = write_run(tmp_path / "first.trec")
    missing = tmp_path / "no-such-model"
    missing.mkdir()
    result = CliRunner().invoke(app, ["eval", "--dataset", str(root), "--run", str(run_path), "--direct",
                                      "--no-progress", "--model", str(missing)])
    assert result.exit_code == 2
    assert f"--model {missing}: cannot load it" in result.output
