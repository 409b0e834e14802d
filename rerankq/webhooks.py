"""For webhook receivers: check that a delivery really comes from this rerankq service.

    from rerankq.webhooks import verify_signature
    if not verify_signature(SECRET, raw_body, request.headers, tolerance_s=300):
        return 401
"""

from core.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify_signature"]
