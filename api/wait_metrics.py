"""What the API process itself costs the store and Redis while requests wait for jobs.

`rerankq_api_waiting_requests` is how many requests wait now in this process, and
`rerankq_api_database_queries_total` counts every SQL statement the process sends, so a load test
(or an alert) can see that waiting requests cost no per-request polling.
"""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, event

DATABASE_QUERIES = Counter("rerankq_api_database_queries", "SQL statements this API process sent to the store.")
_installed = False


def _count(*_args) -> None:
    DATABASE_QUERIES.inc()


def count_database_queries() -> None:
    """Count every statement of every engine in this process (installed once)."""
    global _installed
    if not _installed:
        event.listen(Engine, "before_cursor_execute", _count)
        _installed = True


class WaitersCollector:
    """The number of requests waiting for a job in this process, read at scrape time."""

    def __init__(self, waiters) -> None:
        self.waiters = waiters

    def collect(self):
        family = GaugeMetricFamily("rerankq_api_waiting_requests", "Requests in this API process waiting for a "
                                   "job to finish (POST /v1/rerank, GET /v1/jobs/{id}?wait=, playground).")
        family.add_metric([], self.waiters.count if self.waiters is not None else 0)
        yield family
