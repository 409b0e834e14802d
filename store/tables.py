"""SQL tables: jobs, their requests and chunks, scores, low-confidence cases and their reviews.

Idempotency lives in the unique keys: a chunk is (job_id, chunk_idx), its packed scores are keyed
by the chunk, a case is (job_id, request_idx). A redelivered
message can therefore never write a second copy of anything.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional, cast

from sqlalchemy import (JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint,
                        false, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    model: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="async")  # "sync" (POST /v1/rerank) or "async"
    n_requests: Mapped[int] = mapped_column(Integer)
    n_chunks: Mapped[int] = mapped_column(Integer)
    n_pairs: Mapped[int] = mapped_column(Integer)
    owner: Mapped[Optional[str]] = mapped_column(String(64), index=True, nullable=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    # SHA-256 of the submitted body: a repeated Idempotency-Key must come with the same body.
    request_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    callback_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    # Webhook delivery: pending | delivered | failed (None without callback_url).
    callback_status: Mapped[Optional[str]] = mapped_column(String(16), index=True, nullable=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    callback_delivered_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    published_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)
    started_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(nullable=True, index=True)
    # Retention (store/retention.py): set when the job's requests, chunks and scores were deleted; the row
    # stays a while as a marker so that its id answers 404 job_expired instead of not_found.
    expired_at: Mapped[Optional[datetime]] = mapped_column(nullable=True, index=True)
    # RERANKQ_KEEP_DOCUMENT_TEXT=false: set when the texts of its unflagged requests were replaced by hashes.
    texts_hashed_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)


# One job per (owner, Idempotency-Key). coalesce: with access control off every job has owner NULL,
# and a plain unique key treats NULLs as all different, so two concurrent repeats made two jobs.
Index("uq_jobs_owner_idempotency_key", func.coalesce(Job.owner, ""), Job.idempotency_key, unique=True)
# The text-hashing sweep looks for finished jobs not hashed yet without walking every finished job.
Index("ix_jobs_texts_hashed_finished", Job.texts_hashed_at, Job.finished_at)


class JobRequest(Base):
    """One query with its documents, exactly as submitted (texts live here, not in Redis)."""

    __tablename__ = "job_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    request_idx: Mapped[int] = mapped_column(Integer)
    query: Mapped[str] = mapped_column(Text)
    instruction: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    documents: Mapped[list[Any]] = mapped_column(JSON)
    top_n: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    return_documents: Mapped[bool] = mapped_column(default=False)
    max_tokens_per_doc: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    # query and documents replaced by SHA-256 hashes (store/document_text.py)
    text_hashed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # SHA-256 of the normalized query (store/query_keys.py): how often a query is seen, for the review order.
    query_key: Mapped[Optional[str]] = mapped_column(String(64), index=True, nullable=True)

    __table_args__ = (UniqueConstraint("job_id", "request_idx", name="uq_job_requests_job_request"),)


class JobChunk(Base):
    """One queue message's worth of work: documents [doc_start, doc_end) of one request."""

    __tablename__ = "job_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    chunk_idx: Mapped[int] = mapped_column(Integer)
    request_idx: Mapped[int] = mapped_column(Integer)
    doc_start: Mapped[int] = mapped_column(Integer)
    doc_end: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Until when the delivery that counted the last attempt may still be working on the chunk: a copy
    # of the message arriving before then is a duplicate, not a new attempt (store/claim_lease.py).
    claimed_until: Mapped[Optional[datetime]] = mapped_column(nullable=True)
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    finished_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)

    # (job_id, request_idx): a page of a job's requests reads only its own chunks' scores.
    __table_args__ = (UniqueConstraint("job_id", "chunk_idx", name="uq_job_chunks_job_chunk"),
                      Index("ix_job_chunks_job_request", "job_id", "request_idx"))


class ScoreMetaRow(Base):
    """What produced a set of scores (model, revision, score definition, instruction, degraded),
    stored once and shared by every chunk scored the same way, not repeated per document."""

    __tablename__ = "score_metas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the fields below
    model: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(200))
    score_type: Mapped[str] = mapped_column(String(200))
    instruction: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    degraded: Mapped[bool] = mapped_column(default=False)


class ChunkScores(Base):
    """One chunk's scores, packed: little-endian float32, one per document of the chunk's
    [doc_start, doc_end). The chunk's own key is the primary key, so a chunk is stored at most once."""

    __tablename__ = "chunk_scores"

    chunk_id: Mapped[int] = mapped_column(ForeignKey("job_chunks.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)
    score_meta_id: Mapped[int] = mapped_column(ForeignKey("score_metas.id"))
    scores: Mapped[bytes] = mapped_column(LargeBinary)


class LowConfidenceCase(Base):
    """A scored request a person should look at, with a snapshot of what the model saw."""

    __tablename__ = "low_confidence_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    request_idx: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(40), index=True)  # the first reason, for filtering
    query: Mapped[str] = mapped_column(Text)
    instruction: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    documents: Mapped[list[Any]] = mapped_column(JSON)
    scores: Mapped[list[Any]] = mapped_column(JSON)
    top_score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(200), index=True)
    model_revision: Mapped[str] = mapped_column(String(200))
    score_type: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | reviewed | dismissed
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Last label export that included it (reset by a new review); retention keeps reviewed cases until then.
    exported_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)
    # Model + normalized query + instruction + document set (store/case_repeats.py): identical
    # requests collapse into the first case as repeats instead of flooding the queue.
    case_key: Mapped[Optional[str]] = mapped_column(String(64), unique=True, nullable=True)

    __table_args__ = (UniqueConstraint("job_id", "request_idx", name="uq_cases_job_request"),)


class Review(Base):
    """One reviewer's judgement of one case; a reviewer submitting again updates it (unique pair)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("low_confidence_cases.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200))  # the API key id (or a name when access control is off)
    reviewer_name: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"<doc_index>": grade 0..3}
    best_index: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    note: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    decision: Mapped[str] = mapped_column(String(16))  # reviewed | dismissed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("case_id", "reviewer", name="uq_reviews_case_reviewer"),)


Index("ix_job_requests_job", JobRequest.job_id)
Index("ix_job_chunks_job_status", JobChunk.job_id, JobChunk.status)
# The review queue's pages (a status tab in the queue's order) and the overview's open-by-reason and
# first-review look-ups read index ranges, not the whole table (tests/store/test_store_scale.py).
Index("ix_cases_status_created", LowConfidenceCase.status, LowConfidenceCase.created_at, LowConfidenceCase.id)
Index("ix_cases_status_top_score", LowConfidenceCase.status, LowConfidenceCase.top_score, LowConfidenceCase.id)
Index("ix_cases_status_reason", LowConfidenceCase.status, LowConfidenceCase.reason)
Index("ix_reviews_created_at", Review.created_at)
Index("ix_reviews_case_created", Review.case_id, Review.created_at)


class ApiKey(Base):
    """An API key: only a SHA-256 of its secret is stored (keys are random, so no slow hash is needed)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(nullable=True)


class RevokedSession(Base):
    """A dashboard session ended by logout before its cookie expires (kept until then)."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class TenantWebhookSecret(Base):
    """Each tenant's own webhook signing secret, so no tenant can sign deliveries for another.
    Stored as is: the worker needs it to compute the HMAC."""

    __tablename__ = "tenant_webhook_secrets"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseRepeat(Base):
    """A later request identical to a case's own (same case_key): counted on that case, not a new case."""

    __tablename__ = "case_repeats"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("low_confidence_cases.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    request_idx: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("job_id", "request_idx", name="uq_case_repeats_job_request"),)


class ShadowLink(Base):
    """A request of a shadow or rescore job (scored by another model, never shown to clients) and the
    original request it copies, so two models' scores of one request can be compared."""

    __tablename__ = "shadow_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    request_idx: Mapped[int] = mapped_column(Integer)
    source_job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    source_request_idx: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(16))  # shadow (live traffic) | rescore (rerankq rescore)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("job_id", "request_idx", name="uq_shadow_links_job_request"),
        Index("ix_shadow_links_source", "source_job_id", "source_request_idx"),
    )


class DriftReference(Base):
    """The reference window a model's score distribution is compared with (score drift): fixed when a
    model revision starts serving, or pinned by an operator (`rerankq drift pin`)."""

    __tablename__ = "drift_references"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    model_revision: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)  # None: any revision
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    pinned: Mapped[bool] = mapped_column(default=False)  # True: set by `rerankq drift pin`, not by a new revision
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The tables themselves, for the hot paths' plain Core statements (store/chunk_batch.py, store/jobs.py).
# Declarative __table__ is typed FromClause; a mapped class's is a Table, which insert() and update() take.
JOBS, JOB_REQUESTS, JOB_CHUNKS = (cast(Table, Job.__table__), cast(Table, JobRequest.__table__),
                                  cast(Table, JobChunk.__table__))
