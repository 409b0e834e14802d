"""Idempotency-Key reuse: the stored job comes back only for the same body.

A client that sends one key with two different bodies has a bug (or two clients share a key), and
answering with the first job would silently drop the second body. As Stripe does, such a repeat is
refused with 422 `idempotency_key_reused`; an exact repeat (a retry) still returns the first job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional, Sequence

from api.errors import ApiError
from rerankq.schemas import RerankRequest

HEADER = "Idempotency-Key"


def request_fingerprint(requests: Sequence[RerankRequest], callback_url: Optional[str] = None) -> str:
    """SHA-256 of what the job would do: each request's fields (documents as texts, so `"a"` and
    `{"text": "a"}` are the same body) and the callback URL; JSON key order and spacing do not count."""
    canonical = {
        "requests": [dict(model=r.model, query=r.query, documents=r.document_texts(), top_n=r.top_n,
                          return_documents=r.return_documents, instruction=r.instruction,
                          max_tokens_per_doc=r.max_tokens_per_doc) for r in requests],
        "callback_url": callback_url,
    }
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def check_same_body(key: str, stored: Optional[str], fingerprint: str, job_id: str) -> None:
    """422 when the key's job was created from another body (jobs stored before fingerprints: any body)."""
    if stored is not None and stored != fingerprint:
        raise ApiError(422, "idempotency_key_reused",
                       f"{HEADER}: the key '{key}' was already used for job {job_id} with a different request "
                       "body; send the same body to get that job back, or use a new key for a new job",
                       field=HEADER, limit="one request body per key")
