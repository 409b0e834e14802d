"""Keys that say when two requests are "the same": a normalized query, and a whole case.

Normalizing (Unicode NFKC, case folded, whitespace collapsed) makes "Capital of  France?" and
"capital of france?" one query, so the review queue can count repeats and collapse them.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Optional, Sequence


def normalize_query(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def query_key(text: str) -> str:
    """SHA-256 of the normalized query (stored on job_requests.query_key)."""
    return hashlib.sha256(normalize_query(text).encode("utf-8")).hexdigest()


def case_key(model: str, query: str, instruction: Optional[str], documents: Sequence[str]) -> str:
    """Same model, normalized query, instruction and document set (order does not matter)."""
    payload = json.dumps([model, normalize_query(query), instruction or "", sorted(set(documents))],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
