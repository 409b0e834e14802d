"""Webhook rules shared by the API (checks callback_url at submit), the worker (checks it again and
signs each delivery) and receivers (verify the signature): pure functions, no I/O.

Signature: `X-Rerankq-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` with the Unix
time in `X-Rerankq-Timestamp`, so a receiver can refuse old or replayed deliveries.
"""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from rerankq.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "callback_url_problem", "host_allowed", "host_and_port",
           "parse_allowed_hosts", "sign", "verify_signature"]


def parse_allowed_hosts(setting: str) -> list[str]:
    """`hooks.example.com, *.corp.example, 127.0.0.1:9000` -> lower-cased patterns."""
    return [p.strip().lower() for p in setting.split(",") if p.strip()]


def _split_host_port(netloc: str) -> tuple[str, Optional[int]]:
    parts = urlsplit(f"//{netloc}")
    return (parts.hostname or "").lower(), parts.port


def host_allowed(host: str, port: Optional[int], patterns: list[str]) -> bool:
    """A pattern is `host`, `host:port` or `*.domain`; a pattern without a port allows any port."""
    for pattern in patterns:
        try:
            pattern_host, pattern_port = _split_host_port(pattern)
        except ValueError:
            continue
        if pattern_port is not None and pattern_port != port:
            continue
        if pattern_host.startswith("*."):
            if host.endswith(pattern_host[1:]):
                return True
        elif host == pattern_host:
            return True
    return False


def host_and_port(url: str) -> tuple[str, int]:
    """The URL's host name and port (the scheme's default when none is given); ValueError if invalid."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def callback_url_problem(url: str, allowed_hosts: str) -> Optional[str]:
    """Why `url` may not receive webhooks by its allow-list and form, or None when it may (where its
    host resolves to is core.callback_addresses' concern)."""
    patterns = parse_allowed_hosts(allowed_hosts)
    if not patterns:
        return "webhooks are disabled on this service (RERANKQ_WEBHOOK_ALLOWED_HOSTS is empty)"
    try:
        parts = urlsplit(url)
        host, port = host_and_port(url)
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    if not host_allowed(host, port, patterns):
        return (f"host '{parts.hostname}:{port}' is not in the allow-list "
                f"(RERANKQ_WEBHOOK_ALLOWED_HOSTS: {', '.join(patterns)})")
    return None
