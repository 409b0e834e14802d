"""What gets reranked: each query's first-stage top k with the texts the model sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Candidates:
    query_id: str
    query: str
    doc_ids: list[str]
    texts: list[str]
    instruction: Optional[str] = None


@dataclass
class SystemRun:
    """One scored system: its name, the model revision that scored it, and its run."""

    name: str
    revision: Optional[str]
    scores: dict[str, dict[str, float]]  # query id -> document id -> score
