"""The overview's drift charts: per model, each bucket's PSI against the model's reference window, with
the low-confidence rate per bucket and the reference window's rate on the same chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.dashboard import charts
from store.drift_report import drift_series
from core.settings import Settings
from store.tables import DriftReference


PSI_SHOWN_MAX = 1.0  # far past the 0.2 alarm already; capping keeps the 0..1 rates readable on the same axis


@dataclass(frozen=True)
class DriftPlot:
    model: str
    chart: Markup
    latest_psi: Optional[float]
    rate: Optional[float]  # low-confidence rate of the newest bucket with traffic
    reference_rate: Optional[float]
    reference_start: datetime
    pinned: bool

    @property
    def rate_change(self) -> Optional[float]:
        return None if self.rate is None or self.reference_rate is None else self.rate - self.reference_rate


def _latest(values: list[Optional[float]]) -> Optional[float]:
    return next((v for v in reversed(values) if v is not None), None)


def drift_plots(session: Session, settings: Settings, buckets: list[datetime], step: timedelta,
                x_format: str) -> list[DriftPlot]:
    """One chart per model that has a reference window (set once /metrics or `rerankq drift` measured it)."""
    plots = []
    for model in session.scalars(select(DriftReference.model).order_by(DriftReference.model)):
        series = drift_series(session, settings, model, buckets, step)
        if series is None:
            continue
        shown = [None if v is None else min(v, PSI_SHOWN_MAX) for v in series.psi]
        lines = [charts.Series(f"PSI vs reference (capped at {PSI_SHOWN_MAX:g})", shown, "violet"),
                 charts.Series("low-confidence rate", series.rate, "red"),
                 charts.Series("reference rate", [series.reference_rate] * len(buckets), "slate")]
        chart = charts.time_chart(buckets, lines, label=f"Score drift of {model}", x_format=x_format, y_min_top=0.5)
        plots.append(DriftPlot(model, chart, _latest(series.psi), _latest(series.rate), series.reference_rate,
                               series.reference_start, series.pinned))
    return plots
