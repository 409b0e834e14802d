"""The `rerankq` command: run the whole service locally, or each part on its own host."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from core.settings import Settings

from core.keys_cli import app as keys_app

app = typer.Typer(no_args_is_help=True, help="rerankq: async, queue-based rerank service.")
app.add_typer(keys_app, name="keys")


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def up(
    model: Optional[str] = typer.Option(None, help="Hub id or local directory (RERANKQ_MODEL)."),
    host: Optional[str] = typer.Option(None, help="API bind address (RERANKQ_HOST)."),
    port: Optional[int] = typer.Option(None, help="API port (RERANKQ_PORT)."),
    data_dir: Optional[Path] = typer.Option(None, help="State directory (RERANKQ_DATA_DIR)."),
    open_access: bool = typer.Option(False, "--open", help="No API keys: anyone who reaches the port may call it."),
) -> None:
    """Start Redis (AOF on), migrate SQLite, one worker and the API; Ctrl-C stops all of it."""
    from core.local_stack import run_local_stack

    settings = _settings(model=model, host=host, port=port, data_dir=data_dir,
                         auth_enabled=False if open_access else None)
    raise typer.Exit(run_local_stack(settings))


@app.command()
def api(
    host: Optional[str] = typer.Option(None, help="Bind address (RERANKQ_HOST)."),
    port: Optional[int] = typer.Option(None, help="Port (RERANKQ_PORT)."),
    workers: int = typer.Option(1, help="uvicorn worker processes."),
) -> None:
    """Serve the HTTP API against RERANKQ_REDIS_URL and RERANKQ_DATABASE_URL."""
    import uvicorn

    settings = _settings(host=host, port=port)
    uvicorn.run("api.main:create_app", factory=True, host=settings.host, port=settings.port, workers=workers,
                log_level="info", timeout_graceful_shutdown=10)


@app.command()
def worker(
    model: Optional[str] = typer.Option(None, help="Hub id or local directory (RERANKQ_MODEL)."),
    hostname: Optional[str] = typer.Option(None, help="Unique worker name (default: host and pid)."),
    loglevel: str = typer.Option("INFO", help="Log level."),
) -> None:
    """Run one scoring worker (one per GPU): Celery threads pool feeding one in-process batcher."""
    from workers.main import run_worker

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(_settings(model=model), hostname=hostname, loglevel=loglevel)


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or upgrade the SQL schema at RERANKQ_DATABASE_URL."""
    from store.migrate import upgrade

    settings = Settings()
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url} is at revision {revision}")
