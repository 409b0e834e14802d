"""The scores a worker hands to a waiting POST /v1/rerank with the job's done notice.

Reading a finished job back from the store (job, request and score rows through the ORM) was
the largest part of the API's CPU per synchronous request. The worker that finishes a job
already holds the last chunk's scores and what is stored with them, so it publishes them with
its done notice (`core.redis_keys.JOBS_DONE_CHANNEL`, read by api.job_waiters), and the API
answers from them.

The SQL write stays the record: the worker publishes only after the transaction that stored the
scores and finished the job has committed. The API uses the payload only when it covers every
document of its single request (one chunk); a job of several chunks, a failed or cancelled job,
or a bare job id (a cancel, an older worker, a duplicate delivery) is read from the store as
before. A notice is `<job id>` or `<job id> <payload>` (job ids hold no spaces).
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from rerankq.schemas import DocumentObject, RerankMeta, RerankRequest, RerankResponse, RerankResult

VERSION = 1


def encode(request_idx: int, doc_start: int, scores: Sequence[float], model: str, model_revision: str,
           score_type: str, instruction: Optional[str], degraded: bool) -> str:
    """The message for a job's done list: the committed scores of its last chunk."""
    return json.dumps({"v": VERSION, "request_idx": request_idx, "doc_start": doc_start,
                       "scores": [float(s) for s in scores], "model": model, "model_revision": model_revision,
                       "score_type": score_type, "instruction": instruction, "degraded": bool(degraded)})


def covers_a_request(request_idx: int, doc_start: int) -> bool:
    """Whether a chunk's scores can answer a one-request job alone (worth publishing): the first
    request's first documents. Other chunks are never a whole sync answer."""
    return request_idx == 0 and doc_start == 0


def notice(job_id: str, payload: Optional[str] = None) -> str:
    """The message published on the done channel: the job id, with the payload when there is one."""
    return job_id if payload is None else f"{job_id} {payload}"


def parse_notice(data: Any) -> tuple[str, Optional[str]]:
    """(job id, payload or None) of a done-channel message."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    job_id, _, payload = str(data).partition(" ")
    return job_id, payload or None


def decode(raw: Any) -> Optional[dict]:
    """The payload, or None when there is none (a bare notice) or it is unreadable."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw.startswith("{"):
        return None
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and payload.get("v") == VERSION else None


def response_from(payload: Optional[dict], job_id: str, request: RerankRequest) -> Optional[RerankResponse]:
    """The response the store would give for a one-request job (store.jobs._response), or None
    when the payload does not hold every document's score."""
    if payload is None or payload.get("request_idx") != 0 or payload.get("doc_start") != 0:
        return None
    scores = payload.get("scores") or []
    texts = request.document_texts()
    if len(scores) != len(texts):
        return None
    ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if request.top_n is not None:
        ranked = ranked[: request.top_n]
    degraded = bool(payload.get("degraded"))
    results = [RerankResult(index=i, relevance_score=scores[i],
                            document=DocumentObject(text=texts[i]) if request.return_documents else None,
                            degraded=True if degraded else None) for i in ranked]
    meta = RerankMeta(model=payload["model"], model_revision=payload["model_revision"],
                      score_type=payload["score_type"], instruction=payload.get("instruction"), degraded=degraded,
                      billed_units={"search_units": 1, "documents": len(texts)})
    return RerankResponse(id=job_id, results=results, meta=meta)
