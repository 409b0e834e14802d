"""API keys: create (the secret is shown once), verify, list, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.tables import ApiKey, utcnow

SCOPES = ("submit", "read", "review", "admin", "metrics")  # metrics: GET /metrics when RERANKQ_METRICS_REQUIRE_KEY
KEY_PREFIX = "rrq"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its tenant (jobs are visible within a tenant) and its scopes."""

    key_id: Optional[str]
    name: str
    tenant: Optional[str]
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    @property
    def owner_filter(self) -> Optional[str]:
        """Jobs this caller may see: its tenant's, or all of them for admins."""
        return None if "admin" in self.scopes else self.tenant


ANONYMOUS = Principal(key_id=None, name="anonymous", tenant=None, scopes=frozenset(SCOPES))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: Sequence[str], tenant: Optional[str] = None) -> tuple[ApiKey, str]:
    """Returns the row and the full key `rrq_<id>_<secret>`, which is not stored anywhere."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; unknown: {', '.join(unknown)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, name=name, tenant=tenant or key_id, scopes=sorted(set(scopes)), secret_hash=_digest(secret))
    session.add(row)
    session.flush()
    return row, f"{KEY_PREFIX}_{key_id}_{secret}"


def verify_key(session: Session, token: str) -> Optional[Principal]:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = session.get(ApiKey, parts[1])
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _digest(parts[2])):
        return None
    return Principal(key_id=row.id, name=row.name, tenant=row.tenant, scopes=frozenset(row.scopes))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_key(session: Session, key_id: str) -> bool:
    result = session.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
    return result.rowcount == 1  # type: ignore[attr-defined]  # an UPDATE's CursorResult


def any_active_key(session: Session) -> bool:
    return session.scalars(select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)).first() is not None
