"""The rerankq Python SDK (re-exported by the `rerankq` package): clients and the errors they raise."""

from client.errors import (
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
from client.sdk import AsyncRerankClient, RerankClient

__all__ = [
    "AsyncRerankClient",
    "InvalidRequest",
    "JobCancelled",
    "JobFailed",
    "JobTimeout",
    "NotFound",
    "Overloaded",
    "RerankClient",
    "RerankError",
    "ServiceUnavailable",
    "Unauthorized",
]
