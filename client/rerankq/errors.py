"""What the SDK raises: one base class, one subclass per thing a caller handles differently."""

from __future__ import annotations

from typing import Any, Optional

import httpx


class RerankError(Exception):
    """Any error from the service; `code` and `details` are the API's `error` and `details` fields."""

    def __init__(self, message: str, *, status: Optional[int] = None, code: Optional[str] = None,
                 details: Optional[list[dict[str, Any]]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details or []


class InvalidRequest(RerankError):
    """400/413/422: the request broke a rule; `details` name the field and the limit."""


class Unauthorized(RerankError):
    """401 (missing, unknown or revoked key) or 403 (the key lacks a scope)."""


class NotFound(RerankError):
    """404: no such job, or it belongs to another tenant."""


class Overloaded(RerankError):
    """429 still answered after the retry budget; `retry_after` is the server's last hint in seconds."""

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.attempts = 1


class ServiceUnavailable(RerankError):
    """The service could not be reached, or answered 5xx, after the retry budget."""


class JobFailed(RerankError):
    """The job ended `failed` (or `cancelled`, see JobCancelled); `job` is its last view when known."""

    def __init__(self, message: str, *, job_id: str, job: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job_id = job_id
        self.job = job


class JobCancelled(JobFailed):
    """The job was cancelled before it finished."""


class JobTimeout(RerankError):
    """wait() gave up before the job finished; the job goes on, `job` is its last view."""

    def __init__(self, message: str, *, job_id: str, job: Any = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.job = job


_BY_STATUS = {400: InvalidRequest, 413: InvalidRequest, 422: InvalidRequest, 401: Unauthorized,
              403: Unauthorized, 404: NotFound, 429: Overloaded}


def retry_after(response: httpx.Response) -> Optional[float]:
    """Retry-After in seconds (the API sends a number; HTTP dates are not used by it)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> RerankError:
    """The exception for a non-2xx answer, carrying the API's error body."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("error")
    message = body.get("message") or f"HTTP {response.status_code}: {response.text[:200]}"
    common: dict[str, Any] = dict(status=response.status_code, code=code, details=body.get("details"))
    if code in ("job_failed", "job_cancelled"):
        job_id = message.split()[1] if message.startswith("job ") else ""
        failed_cls: type[JobFailed] = JobCancelled if code == "job_cancelled" else JobFailed
        return failed_cls(message, job_id=job_id, **common)
    if response.status_code == 429:
        return Overloaded(message, retry_after=retry_after(response), **common)
    cls = _BY_STATUS.get(response.status_code, ServiceUnavailable if response.status_code >= 500 else RerankError)
    return cls(message, **common)
