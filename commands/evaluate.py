"""`rerankq eval`: ranking quality on a BEIR-format collection or on the store's reviewed cases."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import List, Optional

import typer

from commands.evaluation import DEFAULT_METRICS


def eval_command(
    dataset: Optional[Path] = typer.Option(None, "--dataset", file_okay=False, help="BEIR directory: corpus.jsonl, "
                                           "queries.jsonl, qrels/test.tsv."),
    reviewed: bool = typer.Option(False, "--reviewed", help="Use the store's reviewed cases (RERANKQ_DATABASE_URL) "
                                  "as the collection instead of --dataset."),
    run: Optional[Path] = typer.Option(None, "--run", dir_okay=False, help="First-stage TREC run "
                                       "(qid Q0 docid rank score tag). Default: BM25 over the corpus (bm25s)."),
    top_k: int = typer.Option(100, "--top-k", min=1, help="Candidates per query to rerank."),
    model: Optional[List[str]] = typer.Option(None, "--model", help="Model name (service) or name/directory "
                                              "(--direct); repeat to compare. Default: the served model."),
    url: Optional[str] = typer.Option(None, envvar="RERANKQ_URL", help="API base URL (default http://127.0.0.1:8000)."),
    api_key: Optional[str] = typer.Option(None, envvar="RERANKQ_API_KEY", help="API key (submit and read scopes)."),
    direct: bool = typer.Option(False, "--direct", help="Score in this process with the worker's backend and "
                                "batch former instead of through the service."),
    metrics: str = typer.Option(DEFAULT_METRICS, help="Comma-separated measures in ir-measures notation."),
    save_run: Optional[Path] = typer.Option(None, "--save-run", help="Write the (first) model's reranked TREC run."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON."),
    state: Optional[Path] = typer.Option(None, "--state", help="Service mode: directory of requests and results, "
                                         "for resuming (default: next to --json or --save-run)."),
    since: Optional[datetime] = typer.Option(None, "--since", formats=["%Y-%m-%d"], help="--reviewed: cases created "
                                             "on or after this day."),
    batch_size: int = typer.Option(16, min=1, help="Service mode: queries per job."),
    concurrency: int = typer.Option(4, min=1, help="Service mode: jobs in flight."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
) -> None:
    """Rerank each query's first-stage top k with one or more models; report metrics and paired t-tests."""
    try:
        import bm25s  # noqa: F401
        import ir_measures  # noqa: F401
    except ImportError as error:
        typer.echo(f"rerankq eval needs the eval extra ({error.name} is missing): pip install 'rerankq-server[eval]'", err=True)
        raise typer.Exit(2)
    from commands.evaluation.collection import InputError
    from commands.evaluation.measures import MetricError
    from commands.evaluation.pipeline import EvalOptions, run_eval
    from commands.evaluation.report import format_report
    from commands.evaluation.service import ServiceRunError

    if (dataset is None) == (not reviewed):
        raise typer.BadParameter("give exactly one of --dataset DIR and --reviewed", param_hint="--dataset")
    if reviewed and run is not None:
        raise typer.BadParameter("--run applies to --dataset only", param_hint="--run")
    if since is not None and not reviewed:
        raise typer.BadParameter("--since applies to --reviewed only", param_hint="--since")
    if direct and url:
        raise typer.BadParameter("--direct scores in this process; drop --url", param_hint="--direct")
    options = EvalOptions(dataset=dataset, reviewed=reviewed, run_path=run, top_k=top_k, models=list(model or []),
                          direct=direct, url=url, api_key=api_key, metrics=metrics, save_run=save_run,
                          json_path=json_path, state_dir=state, since=since.date() if since else None,
                          batch_size=batch_size, concurrency=concurrency, progress=progress)
    try:
        report = run_eval(options)
    except (InputError, MetricError, ValueError) as error:
        typer.echo(f"rerankq eval: {error}", err=True)
        raise typer.Exit(2)
    except ServiceRunError as error:
        typer.echo(f"rerankq eval: {error}", err=True)
        raise typer.Exit(1)
    typer.echo(format_report(report))
