"""`rerankq keys webhook-secret` (registered under `keys` in commands/cli.py): create or rotate a tenant's webhook signing secret (printed once)."""

from __future__ import annotations

import typer

from core.settings import Settings


def webhook_secret(
    tenant: str = typer.Option(..., help="The tenant whose deliveries the secret signs (see `rerankq keys list`)."),
) -> None:
    """Create or rotate a tenant's webhook signing secret; it is printed once, give it to that tenant only.
    Rotating replaces it at once: deliveries from then on are signed with the new one."""
    from store.db import session_scope
    from store.webhook_secrets import rotate_tenant_secret

    with session_scope(Settings().database_url) as session:
        secret = rotate_tenant_secret(session, tenant)
    typer.echo(f"webhook signing secret of tenant {tenant} (shown once; the previous one no longer signs):")
    typer.echo(secret)
