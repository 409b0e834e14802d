"""The benchmark's workloads: generated jobs whose documents have exact token lengths.

Every mode (direct, system, naive) scores the same jobs. Texts are built from a fixed word
list with a seeded generator and cut at a token boundary of the model's own tokenizer, so a
"200-token document" is 200 tokens for the model under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

WORDS = (
    "the quick brown fox jumps over lazy dog near river bank machine learning models rank documents by "
    "their relevance to a search query reranker reads each passage together and returns score Berlin "
    "capital Germany Madrid Spain Paris France photosynthesis converts light energy into chemical plants "
    "stock market closed higher today after central decision water boils at degrees Celsius sea level "
    "Python programming language lets you work quickly judge whether requirements based provided answer "
    "only yes or no weather report storage cluster latency throughput engine index vector database query "
    "planner kernel memory cache disk network packet router museum painting history river mountain"
).split()
QUERY_TOPICS = ["capital of France", "how do rerankers score passages", "boiling point of water",
                "photosynthesis in plants", "stock market news", "python programming", "database indexes",
                "network latency", "museum paintings", "mountain rivers"]


@dataclass
class Job:
    query: str
    documents: list[str]


@dataclass
class Workload:
    """Jobs plus how the system mode drives them: `clients` concurrent clients, or one client
    with `pause_s` between jobs (latency on an idle system)."""

    name: str
    description: str
    jobs: list[Job]
    clients: int = 4
    pause_s: float = 0.0
    doc_tokens: list[int] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return sum(len(j.documents) for j in self.jobs)

    @property
    def latency_mode(self) -> bool:
        return self.pause_s > 0


class TextMaker:
    """Documents of exact token counts for a given tokenizer (one batch call per workload)."""

    def __init__(self, tokenizer: Any, seed: int) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)

    def query(self, index: int) -> str:
        return f"{QUERY_TOPICS[index % len(QUERY_TOPICS)]} {self.rng.choice(WORDS)} {index}"

    def documents(self, lengths: list[int]) -> list[str]:
        drafts = [" ".join(self.rng.choices(WORDS, k=max(2, n + 8))) for n in lengths]
        spans = self.tokenizer(drafts, add_special_tokens=False, return_offsets_mapping=True,
                               return_attention_mask=False)["offset_mapping"]
        out = []
        for draft, offsets, n in zip(drafts, spans, lengths):
            while len(offsets) < n:  # rare: a draft shorter than asked; grow and re-tokenize
                draft += " " + " ".join(self.rng.choices(WORDS, k=n))
                offsets = self.tokenizer(draft, add_special_tokens=False,
                                         return_offsets_mapping=True)["offset_mapping"]
            out.append(draft[: offsets[n - 1][1]])
        return out


def _jobs(maker: TextMaker, sizes: list[int], length: Callable[[], int], first_query: int = 0):
    lengths = [[length() for _ in range(size)] for size in sizes]
    flat = maker.documents([n for row in lengths for n in row])
    jobs, at = [], 0
    for i, row in enumerate(lengths):
        jobs.append(Job(maker.query(first_query + i), flat[at: at + len(row)]))
        at += len(row)
    return jobs, [n for row in lengths for n in row]


def build_workloads(tokenizer: Any, max_length: int, prompt_tokens: int, quick: bool = False,
                    seed: int = 0) -> list[Workload]:
    """small, bulk, mixed, long and idle, sized for a run of a few minutes (seconds with quick).

    `prompt_tokens` is what the prompt adds to a document (template, instruction, query), so
    "near max_length" documents can be sized to fill the budget, a few of them past it."""
    maker = TextMaker(tokenizer, seed)
    rng = random.Random(seed + 1)
    doc_room = max(16, max_length - prompt_tokens)

    def uniform(lo: int, hi: int) -> Callable[[], int]:
        return lambda: rng.randint(lo, hi)

    def long_tailed() -> int:
        return max(4, min(doc_room, int(rng.lognormvariate(4.0, 0.9))))  # median 55, p99 ~450

    small_jobs = 6 if quick else 120
    bulk_sizes = [40, 80] if quick else [100, 250, 500, 1000, 100, 250]
    out = []
    jobs, lens = _jobs(maker, [10] * small_jobs, uniform(40, 160))
    out.append(Workload("small", f"{small_jobs} jobs x 10 docs, 40-160 tokens", jobs, clients=16, doc_tokens=lens))
    jobs, lens = _jobs(maker, bulk_sizes, uniform(60, 140), 100)
    out.append(Workload("bulk", f"jobs of {'/'.join(map(str, bulk_sizes))} docs, 60-140 tokens", jobs, clients=4,
                        doc_tokens=lens))
    mixed_jobs = 3 if quick else 40
    jobs, lens = _jobs(maker, [50] * mixed_jobs, long_tailed, 200)
    out.append(Workload("mixed", f"{mixed_jobs} jobs x 50 docs, long-tailed lengths (lognormal, median ~55)",
                        jobs, clients=8, doc_tokens=lens))
    long_jobs, long_docs = (2, 4) if quick else (6, 20)
    jobs, lens = _jobs(maker, [long_docs] * long_jobs, uniform(doc_room - 60, doc_room + 40), 300)
    out.append(Workload("long", f"{long_jobs} jobs x {long_docs} docs near max_length {max_length} "
                        "(some truncated)", jobs, clients=3, doc_tokens=lens))
    idle_jobs = 3 if quick else 40
    jobs, lens = _jobs(maker, [10] * idle_jobs, uniform(40, 160), 400)
    out.append(Workload("idle", f"{idle_jobs} single 10-doc jobs, one at a time on an idle system", jobs,
                        clients=1, pause_s=0.2, doc_tokens=lens))
    return out


def prefix_workload(tokenizer: Any, quick: bool = False, seed: int = 0) -> Workload:
    """Short documents (16-64 tokens), 50 per query: where running the query prefix once pays most."""
    maker = TextMaker(tokenizer, seed + 7)
    rng = random.Random(seed + 8)
    queries = 2 if quick else 20
    jobs, lens = _jobs(maker, [50] * queries, lambda: rng.randint(16, 64), 500)
    return Workload("prefix", f"{queries} queries x 50 docs of 16-64 tokens", jobs, doc_tokens=lens)
