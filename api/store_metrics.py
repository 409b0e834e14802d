"""Store gauges read at scrape time: review backlog, unfinished jobs and the oldest one's age.

A few indexed COUNTs per scrape. Every API replica reports the same store, so dashboards
and alerts take `max()` of these, never `sum()`.
"""

from __future__ import annotations

import logging
from datetime import timezone

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from core.settings import Settings
from store.db import session_scope
from store.tables import Job, LowConfidenceCase, utcnow
from core.confidence_reasons import ALL_REASONS
from rerankq.schemas import ACTIVE_STATUSES

log = logging.getLogger(__name__)

ACTIVE = ACTIVE_STATUSES
REASONS = ALL_REASONS


class StoreCollector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {family.name: family for family in (
            GaugeMetricFamily("rerankq_store_up", "1 when the database answered this scrape."),
            GaugeMetricFamily("rerankq_review_backlog_cases", "Low-confidence cases waiting for a reviewer, by "
                              "first reason.", labels=["reason"]),
            GaugeMetricFamily("rerankq_jobs_active", "Jobs not finished yet, by status.", labels=["status"]),
            GaugeMetricFamily("rerankq_oldest_active_job_age_seconds",
                              "Age of the oldest queued or running job (0 when none)."),
        )}

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families().values())

    def collect(self) -> list[GaugeMetricFamily]:
        families = self._families()
        try:
            with session_scope(self.settings.database_url) as session:
                backlog = dict(session.execute(
                    select(LowConfidenceCase.reason, func.count()).where(LowConfidenceCase.status == "open")
                    .group_by(LowConfidenceCase.reason)).all())
                active = dict(session.execute(
                    select(Job.status, func.count()).where(Job.status.in_(ACTIVE)).group_by(Job.status)).all())
                oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status.in_(ACTIVE)))
        except Exception as error:  # noqa: BLE001 - a scrape reports the store down instead of failing
            log.warning("store metrics unavailable: %s", error)
            families["rerankq_store_up"].add_metric([], 0)
            return [families["rerankq_store_up"]]
        families["rerankq_store_up"].add_metric([], 1)
        for reason in dict.fromkeys([*REASONS, *backlog]):
            families["rerankq_review_backlog_cases"].add_metric([reason], backlog.get(reason, 0))
        for status in ACTIVE:
            families["rerankq_jobs_active"].add_metric([status], active.get(status, 0))
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # SQLite keeps naive UTC values
                oldest = oldest.replace(tzinfo=timezone.utc)
            age = max(0.0, (utcnow() - oldest).total_seconds())
        families["rerankq_oldest_active_job_age_seconds"].add_metric([], age)
        return list(families.values())
