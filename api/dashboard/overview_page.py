"""The overview: how scores fall, how often results are flagged, the review backlog, jobs and latency."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.dashboard import charts
from api.dashboard.drift_panel import drift_plots
from api.dashboard.render import REASON_LABELS, page, seconds
from api.dashboard.session import ReviewerDep
from api.state import StateDep
from store.db import session_scope
from store.review_stats import WINDOWS, overview, score_histogram

router = APIRouter()
X_FORMATS = {"24h": "%H:%M", "7d": "%a %Hh", "30d": "%b %d"}


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


@router.get("/dashboard/overview", include_in_schema=False)
def overview_page(request: Request, viewer: ReviewerDep, state: StateDep):
    window = request.query_params.get("window")
    window = window if window in WINDOWS else "24h"
    owner = viewer.principal.owner_filter
    with session_scope(state.settings.database_url) as session:
        stats = overview(session, window, owner)
        bins, n_scores = score_histogram(session, owner)
        drift = drift_plots(session, state.settings, stats.buckets, WINDOWS[window][1], X_FORMATS[window]) \
            if owner is None else []  # deployment-wide figures: not for a tenant-scoped viewer
    settings, x_format = state.settings, X_FORMATS[window]
    flagged, scored = sum(stats.flagged), sum(stats.requests)
    figures = dict(open=stats.status_counts.get("open", 0), reviewed=stats.status_counts.get("reviewed", 0),
                   dismissed=stats.status_counts.get("dismissed", 0), flagged=flagged, scored=scored,
                   rate=flagged / scored if scored else None, jobs=sum(stats.jobs),
                   p50=stats.p50, p95=stats.p95, n_scores=n_scores)
    plots = dict(
        scores=charts.histogram(bins, label="Score distribution",
                                markers=[(settings.low_top_score, f"flag below {settings.low_top_score:g}")]),
        rate=charts.time_chart(stats.buckets, [charts.Series("flagged share of requests", stats.rate, "red")],
                               label="Low-confidence rate", y_format=_percent, x_format=x_format),
        backlog=charts.time_chart(stats.buckets, [charts.Series("new cases", stats.cases, "amber", "bar"),
                                                  charts.Series("closed", stats.closed, "green", "bar"),
                                                  charts.Series("open backlog", stats.backlog, "violet")],
                                  label="Review backlog", x_format=x_format, integer=True),
        reasons=charts.bar_list([(REASON_LABELS.get(r, r), n) for r, n in stats.open_by_reason],
                               label="Open cases by reason"),
        jobs=charts.time_chart(stats.buckets, [charts.Series("jobs", stats.jobs, "blue", "bar")],
                               label="Jobs", x_format=x_format, integer=True),
        latency=charts.time_chart(stats.buckets, [charts.Series("p50", stats.latency_p50, "blue"),
                                                  charts.Series("p95", stats.latency_p95, "red")],
                                  label="Latency", y_format=seconds, x_format=x_format),
    )
    return page(request, viewer, "overview.html", window=window, windows=list(WINDOWS), figures=figures,
                plots=plots, step=WINDOWS[window][1], drift=drift)
