"""A test collection in BEIR's layout (corpus.jsonl, queries.jsonl, qrels/test.tsv), read strictly:
a bad line stops the run with its file and line number, since a silently dropped judgement changes
every metric."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator


class InputError(Exception):
    """An input file is missing or has a bad line; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass
class Collection:
    name: str
    corpus: dict[str, str]  # document id -> the text the model sees
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> document id -> graded relevance
    titles: dict[str, str] = field(default_factory=dict)

    @property
    def judged_queries(self) -> list[str]:
        """Queries with at least one judgement, in file order: the ones every metric averages over."""
        return [q for q in self.queries if q in self.qrels]


def document_text(title: str, text: str) -> str:
    """What the model is given, as BEIR's rerankers do: `title + " " + text` when there is a title."""
    return f"{title} {text}" if title else text


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.is_file():
        raise InputError(path, 0, "file not found")
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError as error:
                raise InputError(path, number, f"not JSON ({error})") from None
            if not isinstance(value, dict):
                raise InputError(path, number, "expected a JSON object")
            yield number, value


def _string(path: Path, number: int, value: dict, key: str, required: bool = True) -> str:
    item = value.get(key)
    if item is None and not required:
        return ""
    if isinstance(item, (int, float)) and not isinstance(item, bool) and key == "_id":
        item = str(item)
    if not isinstance(item, str) or (required and key == "_id" and not item):
        raise InputError(path, number, f'"{key}" must be a {"non-empty " if key == "_id" else ""}string')
    return item


def read_corpus(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    corpus, titles = {}, {}
    for number, value in _jsonl(path):
        doc_id = _string(path, number, value, "_id")
        title = _string(path, number, value, "title", required=False)
        corpus[doc_id] = document_text(title, _string(path, number, value, "text"))
        if title:
            titles[doc_id] = title
    return corpus, titles


def read_queries(path: Path) -> dict[str, str]:
    return {_string(path, n, v, "_id"): _string(path, n, v, "text") for n, v in _jsonl(path)}


def read_qrels(path: Path, corpus: dict[str, str], queries: dict[str, str]) -> dict[str, dict[str, int]]:
    """`query-id corpus-id score`, tab-separated, after one header line."""
    if not path.is_file():
        raise InputError(path, 0, "file not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if number == 1 or not any(cell.strip() for cell in row):
                continue
            if len(row) != 3:
                raise InputError(path, number, f"expected 3 tab-separated fields (query-id, corpus-id, score), "
                                 f"got {len(row)}")
            query_id, doc_id, score = (cell.strip() for cell in row)
            try:
                grade = int(score)
            except ValueError:
                raise InputError(path, number, f"score {score!r} is not an integer") from None
            if query_id not in queries:
                raise InputError(path, number, f"query-id {query_id!r} is not in queries.jsonl")
            if doc_id not in corpus:
                raise InputError(path, number, f"corpus-id {doc_id!r} is not in corpus.jsonl")
            qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def load_beir(directory: Path, split: str = "test") -> Collection:
    corpus, titles = read_corpus(directory / "corpus.jsonl")
    queries = read_queries(directory / "queries.jsonl")
    qrels = read_qrels(directory / "qrels" / f"{split}.tsv", corpus, queries)
    return Collection(directory.name, corpus, queries, qrels, titles)
