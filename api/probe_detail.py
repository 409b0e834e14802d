"""What a failed readiness check tells anonymous callers: the error's kind, never its message, which
names hosts and ports; the API log has the message."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def failure(check: str, error: BaseException) -> str:
    log.warning("readiness: %s check failed: %s", check, error)
    return f"error: {type(error).__name__} (details in the API log)"
