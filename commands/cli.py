"""The service's `rerankq` commands: run the whole service locally, or each part on its own host.

The console script itself belongs to the SDK (client/rerankq/cli.py), which finds this app through
the `rerankq.commands` entry point declared in pyproject.toml."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from commands.keys import app as keys_app
from commands.webhook_secret import webhook_secret
from core.settings import Settings

from commands.drift import app as drift_app
from commands.evaluate import eval_command
from commands.purge import purge
from commands.rescore import rescore_command

app = typer.Typer(no_args_is_help=True, help="rerankq: async, queue-based rerank service.")
keys_app.command("webhook-secret")(webhook_secret)  # `rerankq keys webhook-secret --tenant T`
app.add_typer(keys_app, name="keys")
app.command("eval")(eval_command)
app.add_typer(drift_app, name="drift")
app.command("purge")(purge)
app.command("rescore")(rescore_command)


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
    from commands.local_stack import run_local_stack

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

    from core.secret_key_check import secret_key_problem

    settings = _settings(host=host, port=port)
    problem = secret_key_problem(settings, processes=workers)
    if problem:
        typer.echo(f"rerankq api: {problem}", err=True)
        raise typer.Exit(2)
    trusted = settings.forwarded_allow_ips.strip()
    uvicorn.run("api.main:create_app", factory=True, host=settings.host, port=settings.port, workers=workers,
                log_level="info", timeout_graceful_shutdown=10, proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None)


@app.command()
def worker(
    model: Optional[str] = typer.Option(None, help="Hub id or local directory (RERANKQ_MODEL)."),
    hostname: Optional[str] = typer.Option(None, help="Unique worker name (default: host and pid)."),
    loglevel: str = typer.Option("INFO", help="Log level."),
    fallback: bool = typer.Option(False, "--fallback", help="Degraded fallback worker: embedding cosine "
                                  "similarity with RERANKQ_FALLBACK_MODEL (needs RERANKQ_FALLBACK_ENABLED=true)."),
) -> None:
    """Run one scoring worker (one per GPU): Celery threads pool feeding one in-process batcher."""
    from workers.main import run_worker

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if fallback:
        from workers.fallback import run_fallback_worker

        run_fallback_worker(_settings(model=model), hostname=hostname, loglevel=loglevel)
        return
    run_worker(_settings(model=model), hostname=hostname, loglevel=loglevel)


@app.command()
def probe(
    url: str = typer.Argument(..., help="URL to GET, e.g. http://127.0.0.1:8000/healthz."),
    expect: Optional[str] = typer.Option(None, help="Text the body must contain, e.g. 'rerankq_worker_ready 1.0'."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the answer."),
) -> None:
    """Exit 0 when URL answers 200 (and contains --expect): a health check for images without curl."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        typer.echo(f"{url}: {error}", err=True)
        raise typer.Exit(1)
    if response.status_code != 200:
        typer.echo(f"{url}: HTTP {response.status_code}", err=True)
        raise typer.Exit(1)
    if expect is not None and expect not in response.text:
        typer.echo(f"{url}: answer lacks {expect!r}", err=True)
        raise typer.Exit(1)


@app.command("submit", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit_file(ctx: typer.Context) -> None:
    """Score a JSONL file of rerank requests as async jobs, resumable (the SDK's bulk CLI: see `rerankq submit -h`)."""
    from rerankq.cli import submit_main

    raise typer.Exit(submit_main(ctx.args))


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to.")) -> None:
    """Create or upgrade the SQL schema at RERANKQ_DATABASE_URL."""
    from store.migrate import upgrade

    settings = Settings()
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url} is at revision {revision}")


@app.command()
def loadtest(
    url: str = typer.Option("http://127.0.0.1:8000", envvar="RERANKQ_URL", help="Service base URL."),
    api_key: Optional[str] = typer.Option(None, envvar="RERANKQ_API_KEY", help="API key with submit+read scopes."),
    clients: int = typer.Option(8, min=1, max=256, help="Concurrent clients."),
    duration: float = typer.Option(10.0, min=1, max=3600, help="Seconds of submitting."),
    docs: int = typer.Option(10, min=1, help="Documents per job."),
) -> None:
    """Submit and poll from many clients for a fixed time; report accepted, completed, lost, duplicated."""
    from commands.loadtest import format_report, run_load

    report = run_load(url, clients=clients, duration_s=duration, docs_per_job=docs, api_key=api_key)
    typer.echo(format_report(report))
    if report.lost or report.duplicated:
        raise typer.Exit(1)


@app.command("export-labels")
def export_labels(
    format: str = typer.Option("pairs", "--format", "-f", help="pairs (0/1 labels), graded (0-3) or groups "
                               "({query, pos, neg})."),
    output: Path = typer.Option(..., "--output", "-o", help="JSONL file to write ('-' for standard output)."),
    model: Optional[str] = typer.Option(None, help="Only cases scored by this model."),
) -> None:
    """Write reviewed low-confidence cases from RERANKQ_DATABASE_URL as JSONL training data."""
    import sys

    from store.label_export import FORMATS, iter_jsonl, write_export

    if format not in FORMATS:
        raise typer.BadParameter(f"'{format}' is not one of {', '.join(FORMATS)}", param_hint="--format")
    url = Settings().database_url
    if str(output) == "-":
        count = sum(1 for line in iter_jsonl(url, format, model=model) if sys.stdout.write(line) is not None)
        typer.echo(f"exported {count} lines", err=True)
        return
    count = write_export(url, format, output, model=model)
    typer.echo(f"wrote {count} {format} lines to {output}")


@app.command("settings")
def settings_(
    markdown: bool = typer.Option(False, help="Print the README's markdown table of defaults."),
) -> None:
    """Show every RERANKQ_* setting with its current value (or, with --markdown, its default)."""
    from core.settings_doc import markdown_table, settings_rows

    if markdown:
        typer.echo(markdown_table())
        return
    for name, value, description in settings_rows(Settings()):
        typer.echo(f"{name}={value}\t# {description}")


@app.command()
def bench(
    model: Optional[Path] = typer.Option(None, help="A local model directory to bench (default: a generated "
                                         "Qwen3-shaped model with the real 151,669-token vocabulary)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny workloads (and a smaller generated model): a smoke run."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Where to write the figures "
                                             "(default: bench-results/bench-<timestamp>.json)."),
    cache_dir: Path = typer.Option(Path("~/.cache/rerankq/bench"), help="Where the generated model is kept."),
    max_length: int = typer.Option(512, help="Token budget per pair for this run (RERANKQ_MAX_LENGTH)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    workloads: str = typer.Option("small,bulk,mixed,long,idle,ceiling,interactive",
                                  help="Comma-separated subset to run."),
    naive_sample: Optional[int] = typer.Option(None, help="Pairs per workload for the naive baseline."),
    no_system: bool = typer.Option(False, "--no-system", help="Only direct and naive (no Redis, worker, API)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the system's data dir and logs."),
    database_url: str = typer.Option("", help="The systems' store: empty for SQLite, 'postgres' for a throwaway "
                                     "local cluster, or a SQLAlchemy URL."),
    peer: Optional[str] = typer.Option(None, help="Run interactive and bulk against this server too: infinity."),
    peer_venv: Optional[Path] = typer.Option(None, help="The virtual environment holding the peer (bin/infinity_emb)."),
    clients: int = typer.Option(16, min=1, help="Concurrent clients of the interactive workload."),
    requests: Optional[int] = typer.Option(None, min=1, help="Requests of the interactive workload (25 per client)."),
) -> None:
    """Measure pairs/s and latency: direct (in-process limit), system (HTTP, Redis, worker, store) and naive."""
    from commands.bench.options import bench_pipeline_options
    from commands.bench.runner import ALL_WORKLOADS, BenchOptions, main

    chosen = tuple(w.strip() for w in workloads.split(",") if w.strip())
    unknown = [w for w in chosen if w not in ALL_WORKLOADS]
    if unknown or not chosen:
        raise typer.BadParameter(f"{unknown or workloads!r}: choose from {', '.join(ALL_WORKLOADS)}",
                                 param_hint="--workloads")
    main(BenchOptions(model=model, quick=quick, json_path=json_path, cache_dir=cache_dir.expanduser(),
                      max_length=max_length, device=device, workloads=chosen, naive_sample=naive_sample,
                      system=not no_system, keep=keep, **bench_pipeline_options(database_url, peer, peer_venv,
                                                                               clients, requests)))


@app.command("bench-flagging")
def bench_flagging(
    docs: int = typer.Option(1000, min=1, help="Documents in the one-request job whose final write is timed."),
    repeats: int = typer.Option(20, min=1, help="Jobs timed per case."),
) -> None:
    """Time what flagging a low-confidence case adds to the worker's final store write (SQLite)."""
    from commands.bench.flagging import main as flagging_main

    flagging_main(docs, repeats)


@app.command()
def soak(
    minutes: float = typer.Option(1.0, min=0.2, max=24 * 60, help="How long to hold load and inject faults."),
    seed: int = typer.Option(1, help="Draws the fault times, kinds and targets and the load: the same seed replays."),
    workers: int = typer.Option(2, min=2, help="Worker processes (each a fault target)."),
    apis: int = typer.Option(2, min=2, help="API processes (clients spread over them)."),
    clients: int = typer.Option(6, min=1, max=64, help="Concurrent load clients."),
    model: Optional[Path] = typer.Option(None, help="Model directory (default: a tiny Qwen3 built locally)."),
    keep: Optional[Path] = typer.Option(None, help="Keep the stack's data and logs in this directory."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """Chaos soak: PostgreSQL, Redis (AOF), workers and APIs under mixed load with seeded random faults,
    then check the invariants (every job terminal, scored exactly once with the reference scores, ...)."""
    from commands.soak.runner import SoakOptions, run_soak

    raise typer.Exit(run_soak(SoakOptions(minutes=minutes, seed=seed, workers=workers, apis=apis, clients=clients,
                                          model_dir=model, keep=keep, json_path=json_path)))
