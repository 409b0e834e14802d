"""Refuse dashboard signing secrets anyone could guess.

The secret signs session cookies, and key ids are not secret (they are in every key), so a known
secret lets anyone forge an admin's session. With access control on, an API process refuses to
start on a placeholder (the `change-me` of `.env.example` and the k8s example) or on anything
shorter than 32 bytes. An empty secret stays allowed for one process (it picks a random one), but
not for several, which would each pick their own and reject each other's cookies.
"""

from __future__ import annotations

from typing import Optional

from core.settings import Settings

MIN_SECRET_BYTES = 32
SETTING = "RERANKQ_SECRET_KEY"
GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# Normalised (lower case, no separators) spellings of the placeholders people ship or copy.
PLACEHOLDERS = frozenset({"changeme", "secret", "secretkey", "password", "test", "dev", "devsecret", "example",
                          "replaceme", "todo", "xxx", "default", "insecure", "notasecret", "supersecret"})


def _normalised(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalnum())


def is_placeholder(secret: str) -> bool:
    """`change-me`, `CHANGE_ME`, `change-me-please-...`: a known placeholder, however padded."""
    plain = _normalised(secret)
    return plain in PLACEHOLDERS or "changeme" in plain or "replaceme" in plain or len(set(plain)) <= 2


def secret_key_problem(settings: Settings, processes: int = 1) -> Optional[str]:
    """Why this secret may not sign sessions, or None when it may."""
    secret = settings.secret_key
    if not secret:
        if processes > 1 and settings.auth_enabled:
            return (f"{SETTING} is empty and {processes} API processes would each pick their own random secret "
                    f"(and refuse each other's sessions); set one shared value: {GENERATE}")
        return None
    if not settings.auth_enabled:
        return None
    if is_placeholder(secret):
        return (f"{SETTING} is a known placeholder, with which anyone can forge dashboard sessions; "
                f"set a random value of at least {MIN_SECRET_BYTES} bytes: {GENERATE}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return (f"{SETTING} is {len(secret.encode())} bytes, shorter than {MIN_SECRET_BYTES}; "
                f"set a random value: {GENERATE}")
    return None


class WeakSecretKey(RuntimeError):
    """The API refuses to start: the message names the setting and how to make a good value."""


def refuse_weak_secret(settings: Settings, processes: int = 1) -> None:
    problem = secret_key_problem(settings, processes)
    if problem:
        raise WeakSecretKey(problem)
