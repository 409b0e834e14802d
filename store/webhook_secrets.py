"""Each tenant's webhook signing secret.

With one shared secret, any tenant who received a delivery could sign forged ones for every other
tenant's receiver. A tenant's jobs are signed with its own secret, created (and rotated) with
`rerankq keys webhook-secret --tenant T`, which prints it once. Without access control, jobs have no
tenant and RERANKQ_WEBHOOK_SECRET signs them.
"""

from __future__ import annotations

import secrets
from typing import Optional

from sqlalchemy.orm import Session

from store.tables import TenantWebhookSecret, utcnow

SECRET_PREFIX = "whsec_"
COMMAND = "rerankq keys webhook-secret --tenant {tenant}"


def rotate_tenant_secret(session: Session, tenant: str) -> str:
    """A new secret for `tenant` (the old one stops signing at once); returns it, to show once."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = session.get(TenantWebhookSecret, tenant)
    if row is None:
        session.add(TenantWebhookSecret(tenant=tenant, secret=secret, created_at=utcnow()))
    else:
        row.secret, row.created_at = secret, utcnow()
    session.flush()
    return secret


def tenant_secret(session: Session, tenant: str) -> Optional[str]:
    row = session.get(TenantWebhookSecret, tenant)
    return row.secret if row else None


def signing_secret(session: Session, owner: Optional[str], shared: str) -> Optional[str]:
    """The secret that signs a job's deliveries: its tenant's own, or the shared one for jobs without
    a tenant (access control off); None when there is none, and the webhook may not be sent."""
    if owner is None:
        return shared or None
    return tenant_secret(session, owner)


def missing_secret_problem(owner: Optional[str]) -> str:
    if owner is None:
        return "webhooks are disabled on this service (RERANKQ_WEBHOOK_SECRET is empty)"
    return (f"tenant '{owner}' has no webhook signing secret; an operator creates it with "
            f"`{COMMAND.format(tenant=owner)}`")
