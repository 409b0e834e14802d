"""`rerankq purge`: what the worker's retention sweeper does, on demand, with ages given on the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Optional

import typer

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str, option: str) -> timedelta:
    """'30d', '12h', '90m', '45s', '2w' (or a plain number of days) -> timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise typer.BadParameter(f"{text!r} is not an age such as 30d, 12h, 90m or 45s", param_hint=option)
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2) or "d"])


def purge(
    older_than: str = typer.Option(..., "--older-than", help="Delete finished jobs (requests, chunks, scores) "
                                   "that finished longer ago than this: 30d, 12h, 90m, 45s."),
    cases_older_than: Optional[str] = typer.Option(None, "--cases-older-than", help="Also delete cases and their "
                                                   "reviews created longer ago than this (default: "
                                                   "RERANKQ_CASE_RETENTION_DAYS; none when that is 0)."),
    force: bool = typer.Option(False, "--force", help="Also delete reviewed cases no label export has included, "
                               "and the jobs a model's drift reference window samples."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
) -> None:
    """Delete expired jobs, cases and expired-job markers from RERANKQ_DATABASE_URL now, and print what went."""
    from core.settings import Settings
    from store.retention_pass import RetentionPolicy, run_pass

    settings = Settings()
    overrides = dict(jobs=parse_age(older_than, "--older-than"), force=force)
    if force:
        overrides["drift_jobs"] = 0
    if cases_older_than is not None:
        overrides["cases"] = parse_age(cases_older_than, "--cases-older-than")
    policy = RetentionPolicy.from_settings(settings, **overrides)
    if policy.jobs is not None and policy.jobs < policy.settle:
        typer.echo(f"note: jobs that finished in the last {policy.settle.total_seconds():g}s are kept "
                   "(RERANKQ_CHUNK_DEADLINE_S: a late duplicate delivery may still be writing them)", err=True)
    report = run_pass(settings.database_url, policy, dry_run=dry_run)
    heading = "would delete (dry run)" if dry_run else "deleted"
    typer.echo(heading + ":")
    for line in report.lines():
        typer.echo("  " + line)
