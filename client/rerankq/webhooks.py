"""For webhook receivers: check that a delivery really comes from a rerankq service.

    from rerankq.webhooks import verify_signature
    if not verify_signature(SECRET, raw_body, request.headers, tolerance_s=300):
        return 401

Signature: `X-Rerankq-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` with the Unix
time in `X-Rerankq-Timestamp`, so a receiver can refuse old or replayed deliveries. The service signs
with the same functions, so the two sides cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Mapping, Optional, Union

TIMESTAMP_HEADER = "X-Rerankq-Timestamp"
SIGNATURE_HEADER = "X-Rerankq-Signature"
SCHEME = "v1"

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "signature", "verify_signature"]


def signature(secret: str, timestamp: Union[int, str], body: Union[bytes, str]) -> str:
    raw = body if isinstance(body, bytes) else body.encode()
    message = str(timestamp).encode() + b"." + raw
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: Union[bytes, str], timestamp: Optional[int] = None) -> dict[str, str]:
    """The two headers a delivery carries."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"{SCHEME}={signature(secret, timestamp, body)}"}


def verify_signature(secret: str, body: Union[bytes, str], headers: Mapping[str, str],
                     tolerance_s: float = 300.0, now: Optional[float] = None) -> bool:
    """True when the headers carry a valid `v1` signature of `body` made within `tolerance_s`.

    `body` must be the raw request body, byte for byte (not re-serialised JSON)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    candidates = [part.strip()[len(SCHEME) + 1:] for part in given.split(",") if part.strip().startswith(f"{SCHEME}=")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
