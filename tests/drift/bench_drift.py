"""Benchmark (prints figures, asserts nothing): what one drift computation costs the API (both windows
sampled at RERANKQ_DRIFT_MAX_JOBS jobs, PSI and KS), and what the overview's drift chart costs, on SQLite.
Run: .venv/bin/python -m tests.drift.bench_drift [jobs_per_window] [docs_per_request]"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from store.drift_report import drift_series, model_drift
from core.settings import Settings
from store.db import session_scope
from store.migrate import upgrade
from store.review_stats import window_buckets
from store.tables import utcnow
from tests.support.scored_jobs import store_scored_job


def main(jobs: int, docs: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{Path(work) / 'store.db'}"
        upgrade(url)
        settings = Settings(database_url=url, drift_max_jobs=jobs, drift_window_s=3600, drift_reference_s=3600,
                            drift_cache_s=0)  # every computation reads both windows: the uncached cost
        rng = random.Random(1)
        now = utcnow()
        with session_scope(url) as session:
            model_drift(session, settings, "m", "r1", now=now - timedelta(hours=3))
        for start in (now - timedelta(hours=3), now - timedelta(hours=1)):
            for i in range(jobs):
                requests = [(f"q{r}", [f"d{d}" for d in range(docs)], [rng.random() for _ in range(docs)])
                            for r in range(4)]
                store_scored_job(url, "m", requests, lambda s: [], finished_at=start + timedelta(seconds=10 * i + 1))
        timings = []
        for _ in range(3):
            began = time.perf_counter()
            with session_scope(url) as session:
                drift = model_drift(session, settings, "m", "r1", now=now)
            timings.append(time.perf_counter() - began)
        start, step, buckets = window_buckets("24h", now)
        began = time.perf_counter()
        with session_scope(url) as session:
            drift_series(session, settings, "m", buckets, step)
        chart = time.perf_counter() - began
        print(f"{jobs} jobs per window x 4 requests x {docs} documents: {drift.reference_scores} + "
              f"{drift.recent_scores} scores; one drift computation {min(timings) * 1000:.0f} ms (best of 3), "
              f"overview drift chart (24 hourly buckets) {chart * 1000:.0f} ms; PSI {drift.psi:.4f}, KS {drift.ks:.4f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
