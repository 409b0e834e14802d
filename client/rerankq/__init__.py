"""rerankq: the Python SDK of the rerankq service (sync and async clients, the bulk CLI, webhook checks).

    from rerankq import RerankClient
    with RerankClient("http://127.0.0.1:8000", api_key="rrq_...") as client:
        ranked = client.rerank("capital of France?", ["Paris is in France.", "Berlin is in Germany."])
"""

from rerankq.errors import (
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFound,
    Overloaded,
    RerankError,
    ServiceUnavailable,
    Unauthorized,
)
from rerankq.schemas import JobAccepted, JobView, RerankResponse
from rerankq.sdk import AsyncRerankClient, RerankClient

__version__ = "0.1.0"

__all__ = [
    "AsyncRerankClient",
    "InvalidRequest",
    "JobAccepted",
    "JobCancelled",
    "JobFailed",
    "JobTimeout",
    "JobView",
    "NotFound",
    "Overloaded",
    "RerankClient",
    "RerankError",
    "RerankResponse",
    "ServiceUnavailable",
    "Unauthorized",
]
