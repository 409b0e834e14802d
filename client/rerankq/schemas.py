"""The wire contract shared by the API, the workers and the SDK (Cohere-compatible rerank shape)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rerankq.storable_text import StorableStr

MAX_INT32 = 2**31 - 1  # the store's integer columns


class DocumentObject(BaseModel):
    text: str  # results echo stored texts too: api.limits refuses unstorable ones in requests


class RerankRequest(BaseModel):
    """One query and its candidate documents (Cohere v1/v2 shape plus `instruction`)."""

    model_config = ConfigDict(extra="ignore")

    model: Optional[StorableStr] = Field(None, description="Model to score with. Default: the service's default "
                                         "model.")
    query: StorableStr = Field(..., description="The search query.")
    documents: list[Union[str, DocumentObject]] = Field(..., description="Strings or {text} objects.")
    top_n: Optional[int] = Field(None, ge=1, le=MAX_INT32, description="Return only the best N results.")
    return_documents: bool = Field(False, description="Echo each document's text in its result.")
    instruction: Optional[StorableStr] = Field(None, description="Task instruction (Qwen3). Default: the model "
                                               "card's.")
    max_tokens_per_doc: Optional[int] = Field(None, ge=1, le=MAX_INT32,
                                              description="Cut each document to this many tokens.")

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be empty")
        return value

    @field_validator("documents")
    @classmethod
    def _documents_not_empty(cls, value: list) -> list:
        if not value:
            raise ValueError("documents must hold at least one document")
        return value

    def document_texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]


class JobCreate(BaseModel):
    """An asynchronous job: one or many rerank requests scored together."""

    requests: list[RerankRequest] = Field(..., description="Rerank requests; one result set each.")
    callback_url: Optional[StorableStr] = Field(None, description="POSTed a signed summary when the job ends.")

    @field_validator("requests")
    @classmethod
    def _requests_not_empty(cls, value: list) -> list:
        if not value:
            raise ValueError("requests must hold at least one request")
        return value


class JobStatus(str, Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self.value in FINISHED_STATUSES


# The stored `jobs.status` values, grouped: a job moves from an active status to a finished one, once.
ACTIVE_STATUSES = (JobStatus.queued.value, JobStatus.running.value)
FINISHED_STATUSES = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value)


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: Optional[DocumentObject] = None
    # Only on results the degraded fallback scored (meta.degraded says so for the whole set):
    # a request split over several chunks can mix reranker and fallback scores.
    degraded: Optional[bool] = Field(None, description="true when the degraded fallback scored this document "
                                     "(embedding cosine, meta.model); absent otherwise.")


class RerankMeta(BaseModel):
    model: str
    model_revision: str
    score_type: str
    instruction: Optional[str] = None
    degraded: bool = False
    api_version: dict[str, Any] = Field(default_factory=lambda: {"version": "2"})
    billed_units: dict[str, Any] = Field(default_factory=dict)


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    meta: RerankMeta


class JobAccepted(BaseModel):
    id: str
    status: JobStatus


class Progress(BaseModel):
    done: int
    total: int


class CallbackView(BaseModel):
    """Where the job's webhook stands: pending until delivered or out of attempts."""

    url: str
    status: str = Field(..., description="pending | delivered | failed")
    attempts: int = 0
    last_error: Optional[str] = None
    delivered_at: Optional[datetime] = None


class ResultsPage(BaseModel):
    """Which requests' results one answer holds; GET /v1/jobs/{id}?offset=&limit= pages through them."""

    offset: int = Field(..., description="Index of the first request whose results this answer holds.")
    limit: int = Field(..., description="Most requests per answer.")
    total: int = Field(..., description="Requests in the job.")
    next_offset: Optional[int] = Field(None, description="`offset` of the next page; absent on the last one.")
    next: Optional[str] = Field(None, description="Path of the next page; absent on the last one.")


class JobView(BaseModel):
    id: str
    status: JobStatus
    progress: Progress
    created_at: datetime
    finished_at: Optional[datetime] = None
    results: Optional[list[RerankResponse]] = None
    page: Optional[ResultsPage] = Field(None, description="With `results`: which requests they belong to.")
    error: Optional[str] = None
    callback: Optional[CallbackView] = None


class ErrorDetail(BaseModel):
    field: Optional[str] = None
    message: str
    limit: Optional[Any] = None


class ErrorBody(BaseModel):
    error: str = Field(..., description="Machine-readable error code.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
