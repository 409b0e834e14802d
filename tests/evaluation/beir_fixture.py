"""A small BEIR-format collection with known relevance judgments, written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = {
    "capital": ("What is the capital of France?", ["Paris is the capital of France.", "France's capital city is Paris, "
                "on the Seine.", "Lyon is a large city in France.", "Berlin is the capital of Germany."]),
    "gravity": ("What is gravity?", ["Gravity is the force that attracts masses to each other.", "Newton described "
                "gravity as a force between masses.", "Apples fall from trees.", "Quantum physics studies atoms."]),
    "python": ("How do I read a file in Python?", ["Use open() to read a file in Python.", "Python's with open(path) "
               "reads a file safely.", "Snakes such as pythons are reptiles.", "Java reads files with streams."]),
    "coffee": ("How is coffee made?", ["Coffee is brewed from roasted coffee beans and hot water.", "Espresso forces "
               "hot water through ground coffee.", "Tea is made from leaves.", "Coffee shops sell pastries."]),
    "moon": ("How far is the moon from the earth?", ["The moon is about 384,400 km from the earth.", "The distance to "
             "the moon varies between perigee and apogee.", "The sun is a star.", "Moon cakes are eaten in autumn."]),
    "rain": ("Why does it rain?", ["Rain falls when water vapour condenses into droplets heavy enough to fall.",
             "Clouds form as rising air cools and its water vapour condenses.", "Umbrellas keep you dry.",
             "Deserts get little rain."]),
}
GRADES = [3, 2, 1, 0]  # by position in each topic's document list


def write_collection(root: Path, with_titles: bool = True) -> Path:
    """corpus.jsonl, queries.jsonl and qrels/test.tsv; returns the directory."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for topic, (query, documents) in TOPICS.items():
        queries.append({"_id": f"q-{topic}", "text": query})
        for position, text in enumerate(documents):
            doc = {"_id": f"{topic}-{position}", "text": text}
            if with_titles and position % 2 == 0:
                doc["title"] = topic.capitalize()
            corpus.append(doc)
            if position < 3:  # the last document of each topic is unjudged
                qrels.append(f"q-{topic}\t{topic}-{position}\t{GRADES[position]}")
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root


def write_run(path: Path) -> Path:
    """A first-stage run: every topic's documents in reverse order (worst first), plus one other topic's."""
    lines = []
    topics = list(TOPICS)
    for i, topic in enumerate(topics):
        docs = [f"{topic}-{p}" for p in reversed(range(4))] + [f"{topics[(i + 1) % len(topics)]}-0"]
        lines += [f"q-{topic} Q0 {doc} {rank} {10 - rank} bm25" for rank, doc in enumerate(docs, start=1)]
    path.write_text("\n".join(lines) + "\n")
    return path
