"""Dashboard sessions ended by logout: a signed cookie stays valid until it expires, so logging out
must be remembered on the server, or a copied cookie would outlive the logout."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.tables import RevokedSession, utcnow


def revoke_session(session: Session, sid: str, expires: int) -> None:
    """Remember that session `sid` ended (until it would have expired anyway), and forget old ones."""
    session.execute(delete(RevokedSession).where(RevokedSession.expires_at < utcnow()))
    if session.get(RevokedSession, sid) is None:
        try:
            with session.begin_nested():
                session.add(RevokedSession(sid=sid, expires_at=datetime.fromtimestamp(expires, timezone.utc)))
        except IntegrityError:
            pass  # two logouts of one session at once: it is revoked either way


def session_revoked(session: Session, sid: str) -> bool:
    return session.scalar(select(RevokedSession.sid).where(RevokedSession.sid == sid)) is not None
