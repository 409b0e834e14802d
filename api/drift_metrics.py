"""Score drift gauges read at scrape time: rerankq_score_drift_psi/ks{model} and the low-confidence rate
of the recent and reference windows. One computation serves scrapes for RERANKQ_DRIFT_CACHE_S, since it
samples a few hundred jobs per model (seconds for 2 x 100 jobs on a loaded 2-core machine: tests/drift/bench_drift.py),
so scrapes get the last figures while a background thread refreshes them. Every API replica reports the same
store: alerts take max()."""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import redis
from prometheus_client.core import GaugeMetricFamily

from api.served_models import live_workers, served_models
from store.drift_report import ModelDrift, model_drift
from core.settings import Settings
from store.db import session_scope

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, tuple[float, list[ModelDrift]]] = {}  # database URL -> (computed at, figures)
_refreshing: set[str] = set()


def served_revisions(settings: Settings, client: Optional[redis.Redis]) -> dict[str, Optional[str]]:
    """{model: revision its live workers run (None: no live worker)} for every served model."""
    try:
        workers = live_workers(client) if client is not None else []
    except redis.RedisError:
        workers = []
    return {model.id: model.revision for model in served_models(settings, workers)}


def _compute(settings: Settings, client: Optional[redis.Redis]) -> list[ModelDrift]:
    with session_scope(settings.database_url) as session:
        return [model_drift(session, settings, model, revision)
                for model, revision in served_revisions(settings, client).items()]


def _refresh(settings: Settings, client: Optional[redis.Redis]) -> None:
    key = settings.database_url
    try:
        _cache[key] = (time.monotonic(), _compute(settings, client))
    except Exception as error:  # noqa: BLE001 - the last figures stay; the next scrape tries again
        log.warning("score drift unavailable: %s", error)
    finally:
        with _lock:
            _refreshing.discard(key)


def current_drift(settings: Settings, client: Optional[redis.Redis]) -> list[ModelDrift]:
    """The latest drift figures. The first scrape computes them; later ones get the last figures at once
    and, past RERANKQ_DRIFT_CACHE_S, start one background recomputation (a scrape never waits for one)."""
    key = settings.database_url
    cached = _cache.get(key)
    if cached is None:
        drift = _compute(settings, client)
        _cache[key] = (time.monotonic(), drift)
        return drift
    if time.monotonic() - cached[0] >= settings.drift_cache_s:
        with _lock:
            start = key not in _refreshing
            _refreshing.add(key)
        if start:
            threading.Thread(target=_refresh, args=(settings, client), name="drift-refresh", daemon=True).start()
    return cached[1]


class DriftCollector:
    def __init__(self, settings: Settings, client: Optional[redis.Redis]) -> None:
        self.settings = settings
        self.client = client

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {family.name: family for family in (
            GaugeMetricFamily("rerankq_score_drift_psi", "Population stability index of the model's recent scores "
                              "(RERANKQ_DRIFT_WINDOW_S) against its reference window; > 0.2 is a significant shift.",
                              labels=["model"]),
            GaugeMetricFamily("rerankq_score_drift_ks", "Two-sample Kolmogorov-Smirnov statistic of the same two "
                              "score samples (0 same, 1 disjoint).", labels=["model"]),
            GaugeMetricFamily("rerankq_low_confidence_rate", "Share of the model's scored requests flagged "
                              "low-confidence, in the recent and the reference window.", labels=["model", "window"]),
        )}

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families().values())

    def collect(self) -> list[GaugeMetricFamily]:
        families = self._families()
        try:
            drift = current_drift(self.settings, self.client)
        except Exception as error:  # noqa: BLE001 - a scrape leaves drift out instead of failing
            log.warning("score drift unavailable: %s", error)
            return []
        for item in drift:
            if item.psi is not None and item.ks is not None:
                families["rerankq_score_drift_psi"].add_metric([item.model], item.psi)
                families["rerankq_score_drift_ks"].add_metric([item.model], item.ks)
            for window, rate in (("recent", item.recent_rate), ("reference", item.reference_rate)):
                if rate is not None:
                    families["rerankq_low_confidence_rate"].add_metric([item.model, window], rate)
        return list(families.values())
