"""Shadow and rescore jobs: copies of stored requests scored by another model.

A copy is an ordinary job (same chunks, same exactly-once store writes) with kind `shadow` or
`rescore`, no owner and no callback, on the model's shadow lane; a ShadowLink row per request
names the request it copies. Clients never see it: their job ids and results are untouched.

A request whose texts are gone from job_requests (retention deleted its job's rows, or
RERANKQ_KEEP_DOCUMENT_TEXT=false replaced them by hashes) is copied from its case, which keeps
its own texts; one with neither is left out: a copy of hashes would score garbage.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from rerankq.schemas import JobStatus
from store.query_keys import query_key
from store.tables import Job, JobChunk, JobRequest, LowConfidenceCase, ShadowLink

SHADOW, RESCORE = "shadow", "rescore"
COPY_KINDS = (SHADOW, RESCORE)


@dataclass(frozen=True)
class _Original:
    job_id: str
    request_idx: int
    query: str
    instruction: Optional[str]
    documents: list
    max_tokens_per_doc: Optional[int]
    query_key: Optional[str]


def originals_of(session: Session, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], _Original]:
    """The texts of each wanted request: its stored request, or (texts hashed, or the request expired) its case's."""
    requests = {(r.job_id, r.request_idx): r for r in session.scalars(
        select(JobRequest).where(tuple_(JobRequest.job_id, JobRequest.request_idx).in_(wanted)))}
    found = {key: _Original(r.job_id, r.request_idx, r.query, r.instruction, list(r.documents), r.max_tokens_per_doc,
                            r.query_key) for key, r in requests.items() if not r.text_hashed}
    missing = [key for key in wanted if key not in found]
    if missing:
        for case in session.scalars(select(LowConfidenceCase).where(
                tuple_(LowConfidenceCase.job_id, LowConfidenceCase.request_idx).in_(missing))):
            key = (case.job_id, case.request_idx)
            stored = requests.get(key)
            found[key] = _Original(case.job_id, case.request_idx, case.query, case.instruction, list(case.documents),
                                   stored.max_tokens_per_doc if stored else None,
                                   stored.query_key if stored else query_key(case.query))
    return found


def create_copy_job(session: Session, sources: Sequence[tuple[str, int]], *, model: str, queue: str,
                    purpose: str, chunk_pairs: int) -> tuple[str, list[int]]:
    """Copy the requests `sources` ((job id, request index) pairs) into one new job for `model`;
    returns (job id, chunk indices to publish). Committed by the caller."""
    if purpose not in COPY_KINDS:
        raise ValueError(f"purpose must be one of {COPY_KINDS}")
    wanted = list(dict.fromkeys(sources))
    rows = originals_of(session, wanted)
    originals = [rows[key] for key in wanted if key in rows]
    if not originals:
        return "", []
    job_id = str(uuid.uuid4())
    chunks: list[JobChunk] = []
    for request_idx, original in enumerate(originals):
        n_docs = len(original.documents)
        for start in range(0, n_docs, chunk_pairs):
            chunks.append(JobChunk(job_id=job_id, chunk_idx=len(chunks), request_idx=request_idx,
                                   doc_start=start, doc_end=min(start + chunk_pairs, n_docs)))
    session.add(Job(id=job_id, status=JobStatus.queued.value, model=model, queue=queue, kind=purpose,
                    n_requests=len(originals), n_chunks=len(chunks),
                    n_pairs=sum(len(r.documents) for r in originals), owner=None))
    session.flush()
    for request_idx, original in enumerate(originals):
        session.add(JobRequest(job_id=job_id, request_idx=request_idx, query=original.query,
                               instruction=original.instruction, documents=list(original.documents),
                               top_n=None, return_documents=False, max_tokens_per_doc=original.max_tokens_per_doc,
                               query_key=original.query_key))
        session.add(ShadowLink(job_id=job_id, request_idx=request_idx, source_job_id=original.job_id,
                               source_request_idx=original.request_idx, purpose=purpose))
    session.add_all(chunks)
    session.flush()
    return job_id, [c.chunk_idx for c in chunks]
