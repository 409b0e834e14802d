"""`rerankq drift`: show each model's score drift, or pin its reference window to recent traffic."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, help="Score drift: recent scores against each model's reference window.")


@app.command()
def pin(
    model: str = typer.Option(..., "--model", help="Served model name (as in jobs and /v1/models)."),
    revision: Optional[str] = typer.Option(None, help="Revision the reference stands for (default: the one that "
                                           "scored most of the window)."),
    hours: Optional[float] = typer.Option(None, min=0.01, help="Window length (default RERANKQ_DRIFT_REFERENCE_S)."),
) -> None:
    """Make the model's last RERANKQ_DRIFT_REFERENCE_S of traffic its reference window."""
    from core.settings import Settings
    from store.db import session_scope
    from store.drift import pin_reference

    settings = Settings()
    length = timedelta(hours=hours) if hours else timedelta(seconds=settings.drift_reference_s)
    with session_scope(settings.database_url) as session:
        reference = pin_reference(session, model, length, revision)
        typer.echo(f"{model}: reference window {reference.window_start:%Y-%m-%d %H:%M} to "
                   f"{reference.window_end:%Y-%m-%d %H:%M} UTC, revision {reference.model_revision or 'any'}")


@app.command()
def show(model: Optional[str] = typer.Option(None, "--model", help="One model (default: every model with a "
                                             "reference window or recent traffic).")) -> None:
    """Print PSI, KS and the low-confidence rates of the recent and reference windows."""
    from store.drift_report import model_drift
    from core.settings import Settings
    from store.db import session_scope
    from store.drift import get_reference, models_with_traffic
    from store.tables import utcnow

    settings = Settings()
    with session_scope(settings.database_url) as session:
        since = utcnow() - timedelta(seconds=settings.drift_window_s)
        names = [model] if model else models_with_traffic(session, since)
        for name in names:
            reference = get_reference(session, name)
            item = model_drift(session, settings, name, reference.model_revision if reference else None)

            def fmt(value, pattern="{:.3f}"):
                return "-" if value is None else pattern.format(value)

            typer.echo(f"{name}: PSI {fmt(item.psi)}, KS {fmt(item.ks)}; scores {item.recent_scores} recent vs "
                       f"{item.reference_scores} reference ({item.reference_start:%Y-%m-%d %H:%M}.."
                       f"{item.reference_end:%Y-%m-%d %H:%M}{', pinned' if item.pinned else ''}); low-confidence "
                       f"rate {fmt(item.recent_rate, '{:.1%}')} vs {fmt(item.reference_rate, '{:.1%}')}")
