"""Benchmark (prints figures, asserts nothing): `rerankq eval` on a generated collection, in-process
(--direct) and through a real stack (API, Redis, one worker, tiny Qwen3), and how far the two runs differ.
Run: .venv/bin/python -m tests.evaluation.bench_eval [queries] [docs_per_query]"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.support.stack import make_stack
from tests.support.tiny_models import build_tiny_qwen3

WORDS = ("river bank money loan water stone city train music paper light energy garden market doctor "
         "planet ocean forest engine bridge window school").split()


def write_collection(root: Path, queries: int, docs: int, rng: random.Random) -> None:
    (root / "qrels").mkdir(parents=True)
    corpus, lines, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for q in range(queries):
        topic = rng.sample(WORDS, 3)
        lines.append({"_id": f"q{q}", "text": " ".join(topic)})
        for d in range(docs):
            words = topic + rng.sample(WORDS, 8) if d < 3 else rng.sample(WORDS, 11)
            corpus.append({"_id": f"q{q}-d{d}", "title": f"doc {d}", "text": " ".join(words)})
            qrels.append(f"q{q}\tq{q}-d{d}\t{2 if d < 3 else 0}")
    (root / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in lines))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    run = [f"q{q} Q0 q{q}-d{d} {d + 1} {docs - d} first" for q in range(queries) for d in rng.sample(range(docs), docs)]
    (root / "run.trec").write_text("\n".join(run) + "\n")


def read_run(path: Path) -> dict:
    run = {}
    for line in path.read_text().splitlines():
        qid, _, did, _, score, _ = line.split()
        run[(qid, did)] = float(score)
    return run


def main(queries: int, docs: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = Path(build_tiny_qwen3(work / "tiny-qwen3"))
        write_collection(work / "beir", queries, docs, random.Random(5))
        stack = make_stack(work / "stack", model)
        try:
            stack.start_worker("bench")
            stack.start_api()
            common = ["eval", "--dataset", str(work / "beir"), "--run", str(work / "beir" / "run.trec"), "--top-k",
                      str(docs), "--no-progress"]
            timings = {}
            for name, extra in (("direct", ["--direct"]), ("service", ["--url", stack.base_url])):
                began = time.perf_counter()
                done = stack.cli(*common, *extra, "--save-run", str(work / f"{name}.trec"),
                                 "--json", str(work / f"{name}.json"))
                timings[name] = time.perf_counter() - began
                if done.returncode != 0:
                    sys.exit(done.stderr)
            direct, service = read_run(work / "direct.trec"), read_run(work / "service.trec")
            diff = max(abs(direct[k] - service[k]) for k in direct)
            pairs = queries * docs
            metrics = json.loads((work / "service.json").read_text())["systems"][1]["metrics"]
            print(f"{queries} queries x {docs} candidates = {pairs} pairs: --direct {timings['direct']:.1f} s "
                  f"(with model load), through the service {timings['service']:.1f} s "
                  f"({pairs / timings['service']:.0f} pairs/s); max |score difference| {diff:.2e}; "
                  f"service nDCG@10 {metrics['nDCG@10']:.4f}")
        finally:
            stack.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
