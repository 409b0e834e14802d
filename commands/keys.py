"""`rerankq keys ...`: manage API keys in the store at RERANKQ_DATABASE_URL."""

from __future__ import annotations

from typing import Optional

import typer

from core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")


@app.command("create")
def create(
    name: str = typer.Option(..., help="Who or what the key is for."),
    scopes: str = typer.Option("submit,read", help="Comma-separated: submit, read, review, admin."),
    tenant: Optional[str] = typer.Option(None, help="Keys of one tenant see each other's jobs (default: own)."),
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from store.db import session_scope
    from store.keys import create_key

    with session_scope(Settings().database_url) as session:
        try:
            row, token = create_key(session, name, [s.strip() for s in scopes.split(",") if s.strip()], tenant)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--scopes") from error
    typer.echo(f"created key {row.id} ({row.name}; tenant {row.tenant}; scopes {','.join(row.scopes)})")
    typer.echo(token)


@app.command("list")
def list_() -> None:
    """Show every key (never its secret)."""
    from store.db import session_scope
    from store.keys import list_keys

    with session_scope(Settings().database_url) as session:
        for row in list_keys(session):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            typer.echo(f"{row.id}\t{row.name}\t{row.tenant}\t{','.join(row.scopes)}\t{state}")


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key id (the part after rrq_).")) -> None:
    """Revoke a key at once."""
    from store.db import session_scope
    from store.keys import revoke_key

    with session_scope(Settings().database_url) as session:
        if not revoke_key(session, key_id):
            raise typer.BadParameter(f"no active key {key_id}", param_hint="KEY_ID")
    typer.echo(f"revoked {key_id}")
