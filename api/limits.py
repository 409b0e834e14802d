"""Configurable limits, checked before anything is written; each error names field and limit."""

from __future__ import annotations

from typing import Sequence

from api.errors import ApiError
from rerankq.schemas import RerankRequest
from core.settings import Settings
from rerankq.storable_text import MESSAGE as UNSTORABLE_MESSAGE
from rerankq.storable_text import UNSTORABLE


def _too_big(field: str, message: str, limit: int, setting: str) -> ApiError:
    return ApiError(422, "limit_exceeded", f"{field}: {message} (limit {limit}, {setting})", field=field, limit=limit)


def check_request(request: RerankRequest, settings: Settings, prefix: str = "") -> None:
    documents = request.documents
    if len(documents) > settings.max_documents:
        raise _too_big(f"{prefix}documents", f"{len(documents)} documents is more than allowed",
                       settings.max_documents, "RERANKQ_MAX_DOCUMENTS")
    for field, text in (("query", request.query), ("instruction", request.instruction or "")):
        if len(text) > settings.max_query_chars:
            raise _too_big(f"{prefix}{field}", f"{len(text)} characters is more than allowed",
                           settings.max_query_chars, "RERANKQ_MAX_QUERY_CHARS")
    for index, text in enumerate(request.document_texts()):
        if UNSTORABLE.search(text):
            raise ApiError(422, "invalid_request", f"{prefix}documents.{index}: {UNSTORABLE_MESSAGE}",
                           field=f"{prefix}documents.{index}")
        if len(text) > settings.max_document_chars:
            raise _too_big(f"{prefix}documents.{index}", f"{len(text)} characters is more than allowed",
                           settings.max_document_chars, "RERANKQ_MAX_DOCUMENT_CHARS")
    if request.top_n is not None and request.top_n > len(documents):
        # Cohere answers with all documents here; so do we, silently capping top_n.
        request.top_n = len(documents)


def check_requests(requests: Sequence[RerankRequest], settings: Settings) -> None:
    if len(requests) > settings.max_requests_per_job:
        raise _too_big("requests", f"{len(requests)} requests is more than allowed",
                       settings.max_requests_per_job, "RERANKQ_MAX_REQUESTS_PER_JOB")
    for index, request in enumerate(requests):
        check_request(request, settings, prefix=f"requests.{index}.")


def check_model(request: RerankRequest, served: Sequence[str], prefix: str = "") -> None:
    """`served`: configured models plus those of live workers (api.served_models.accepted_names)."""
    if request.model is not None and request.model not in served:
        raise ApiError(400, "unknown_model", f"{prefix}model: '{request.model}' is not served here; "
                       f"served models: {', '.join(served)} (GET /v1/models)", field=f"{prefix}model",
                       limit=list(served))
