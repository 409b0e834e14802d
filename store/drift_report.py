"""Score drift per served model: the recent window (RERANKQ_DRIFT_WINDOW_S) against the model's reference
window, as PSI and KS over scores, plus the low-confidence rate of both windows. Used by the API's
/metrics (rerankq_score_drift_psi/ks), the dashboard's overview and `rerankq drift`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy.orm import Session

from core.drift_stats import ks, psi
from core.settings import Settings
from store.drift import WindowSample, reference_for_revision, window_sample
from store.tables import DriftReference, utcnow


@dataclass(frozen=True)
class ModelDrift:
    model: str
    revision: Optional[str]
    reference_start: datetime
    reference_end: datetime
    pinned: bool
    reference_scores: int
    recent_scores: int
    psi: Optional[float]  # None while either window has fewer than RERANKQ_DRIFT_MIN_SCORES scores
    ks: Optional[float]
    reference_rate: Optional[float]  # low-confidence rate of the reference window
    recent_rate: Optional[float]

    @property
    def rate_change(self) -> Optional[float]:
        if self.reference_rate is None or self.recent_rate is None:
            return None
        return self.recent_rate - self.reference_rate


_reference_cache: dict[tuple, tuple[float, WindowSample]] = {}
_reference_lock = threading.Lock()


def reference_sample(session: Session, reference: DriftReference, settings: Settings) -> WindowSample:
    """The reference window's sample, kept for RERANKQ_DRIFT_CACHE_S: the window is fixed, so its sample
    changes only while it is still filling, and /metrics and the overview share it."""
    key = (settings.database_url, reference.model, reference.model_revision, reference.window_start,
           reference.window_end, settings.drift_max_jobs)
    with _reference_lock:
        cached = _reference_cache.get(key)
        if cached and time.monotonic() - cached[0] < settings.drift_cache_s:
            return cached[1]
    sample = window_sample(session, reference.model, reference.window_start, reference.window_end,
                           reference.model_revision, settings.drift_max_jobs)
    with _reference_lock:
        if len(_reference_cache) > 64:
            _reference_cache.clear()
        _reference_cache[key] = (time.monotonic(), sample)
    return sample


def compare(reference: WindowSample, recent: WindowSample, settings: Settings) -> tuple[Optional[float], Optional[float]]:
    if min(len(reference.scores), len(recent.scores)) < settings.drift_min_scores:
        return None, None
    return psi(reference.scores, recent.scores, settings.drift_bins), ks(reference.scores, recent.scores)


def model_drift(session: Session, settings: Settings, model: str, revision: Optional[str],
                now: Optional[datetime] = None) -> ModelDrift:
    """Drift of `model` now; `revision` is what its workers serve (None: unknown, keep the reference)."""
    now = now or utcnow()
    reference = reference_for_revision(session, model, revision, timedelta(seconds=settings.drift_reference_s), now)
    base = reference_sample(session, reference, settings)
    recent = window_sample(session, model, now - timedelta(seconds=settings.drift_window_s), now,
                           reference.model_revision, settings.drift_max_jobs)
    value_psi, value_ks = compare(base, recent, settings)
    return ModelDrift(model, reference.model_revision, reference.window_start, reference.window_end, reference.pinned,
                      len(base.scores), len(recent.scores), value_psi, value_ks, base.low_confidence_rate,
                      recent.low_confidence_rate)


@dataclass(frozen=True)
class DriftSeries:
    """One model's drift over the overview's buckets: PSI of each bucket against the reference, and the
    low-confidence rate of each bucket next to the reference's."""

    model: str
    psi: list[Optional[float]]
    rate: list[Optional[float]]
    reference_rate: Optional[float]
    reference_start: datetime
    pinned: bool


def drift_series(session: Session, settings: Settings, model: str, buckets: list[datetime], step: timedelta
                 ) -> Optional[DriftSeries]:
    """None when the model has no reference yet (it has not been measured since it started serving)."""
    from store.drift import get_reference

    reference = get_reference(session, model)
    if reference is None:
        return None
    base = reference_sample(session, reference, settings)
    per_bucket = max(2, settings.drift_max_jobs // max(1, len(buckets)))  # one page view reads ~2 windows' worth
    values, rates = [], []
    for start in buckets:
        sample = window_sample(session, model, start, start + step, reference.model_revision, per_bucket)
        values.append(compare(base, sample, settings)[0])
        rates.append(sample.low_confidence_rate)
    return DriftSeries(model, values, rates, base.low_confidence_rate, reference.window_start, reference.pinned)
