"""`rerankq rescore`: score stored cases again with another model or revision, through the queue."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Optional

import typer

from core.settings import Settings


def rescore_command(
    model: str = typer.Option(..., "--model", help="The model name its workers serve (RERANKQ_MODEL_NAME)."),
    cases: str = typer.Option("reviewed", "--cases", help="reviewed, open or all."),
    since: Optional[datetime] = typer.Option(None, "--since", formats=["%Y-%m-%d"],
                                             help="Only cases created on or after this day (YYYY-MM-DD)."),
    wait: float = typer.Option(0.0, "--wait", help="Wait up to this many seconds for the jobs to finish."),
) -> None:
    """Re-score stored cases with MODEL on its shadow lane; compare with GET /v1/models/compare."""
    from store.db import session_scope
    from store.jobs import mark_published
    from store.rescore import CASE_SETS, cases_to_rescore, create_rescore_jobs
    from core.queue import SHADOW_LANE, make_celery, publish_chunks, queue_name

    if cases not in CASE_SETS:
        raise typer.BadParameter(f"'{cases}' is not one of {', '.join(CASE_SETS)}", param_hint="--cases")
    settings = Settings()
    queue = queue_name(model, SHADOW_LANE)
    with session_scope(settings.database_url) as session:
        sources = cases_to_rescore(session, model, cases, since.date() if since else None)
        jobs = create_rescore_jobs(session, sources, model=model, queue=queue, chunk_pairs=settings.chunk_pairs,
                                   requests_per_job=settings.max_requests_per_job)
    app = make_celery(settings)
    for job_id, chunks in jobs:
        publish_chunks(app, job_id, chunks, queue)
        with session_scope(settings.database_url) as session:
            mark_published(session, job_id)
    typer.echo(f"rescoring {len(sources)} cases with {model} in {len(jobs)} jobs on {queue}")
    if wait > 0 and jobs:
        status = _wait(settings.database_url, [j for j, _ in jobs], wait)
        typer.echo(", ".join(f"{n} {s}" for s, n in sorted(status.items())))
        if set(status) != {"succeeded"}:
            raise typer.Exit(1)


def _wait(url: str, job_ids: list[str], timeout_s: float) -> dict[str, int]:
    from sqlalchemy import select

    from store.db import session_scope
    from store.tables import Job

    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(url) as session:
            statuses = list(session.scalars(select(Job.status).where(Job.id.in_(job_ids))))
        if all(s in ("succeeded", "failed", "cancelled") for s in statuses) or time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for s in statuses:
                counts[s] = counts.get(s, 0) + 1
            return counts
        time.sleep(0.5)


