"""rerankq: the public package for users' code (the client SDK and the CLI entry point).

    from rerankq import RerankClient
    with RerankClient("http://127.0.0.1:8000", api_key="rrq_...") as client:
        ranked = client.rerank("capital of France?", ["Paris is in France.", "Berlin is in Germany."])
"""

from client import (
    AsyncRerankClient,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFound,
    Overloaded,
    RerankClient,
    RerankError,
    ServiceUnavailable,
    Unauthorized,
)
from core.schemas import JobAccepted, JobView, RerankResponse

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
