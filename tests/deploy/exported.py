"""What the code exports to Prometheus, read from the metric objects themselves: series names
(with the suffixes Prometheus adds) mapped to their label names and metric type."""

from __future__ import annotations

from dataclasses import dataclass

TARGET_LABELS = frozenset({"instance", "job"})  # added by Prometheus to every scraped series


@dataclass(frozen=True)
class Series:
    name: str
    family: str
    type: str  # counter | gauge | histogram | info | summary
    labels: frozenset[str]


def _series(family: str, kind: str, labels) -> list[Series]:
    labels = frozenset(labels) | TARGET_LABELS
    if kind == "counter":
        return [Series(f"{family}_total", family, kind, labels)]
    if kind == "histogram":
        return [Series(f"{family}_bucket", family, kind, labels | {"le"}),
                Series(f"{family}_sum", family, kind, labels), Series(f"{family}_count", family, kind, labels)]
    if kind == "summary":
        return [Series(family, family, kind, labels | {"quantile"}), Series(f"{family}_sum", family, kind, labels),
                Series(f"{family}_count", family, kind, labels)]
    if kind == "info":
        return [Series(f"{family}_info", family, kind, labels)]
    return [Series(family, family, kind, labels)]


def exported_series() -> dict[str, Series]:
    """Every `rerankq_` series the API and the workers can expose."""
    from prometheus_client.metrics import MetricWrapperBase

    import api.metrics
    import workers.metrics
    from api.drift_metrics import DriftCollector
    from api.queue_metrics import BrokerCollector
    from api.store_metrics import StoreCollector
    from workers.metrics import WORKER_INFO, WORKER_INFO_LABELS, WorkerCollector

    found: list[Series] = []
    for module in (api.metrics, workers.metrics):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase) and value._name.startswith("rerankq_"):
                labels = WORKER_INFO_LABELS if value is WORKER_INFO else value._labelnames
                found += _series(value._name, value._type, labels)
    for collector in (BrokerCollector(None, None), StoreCollector(None), DriftCollector(None, None),
                      WorkerCollector(None)):
        for family in collector.describe():
            found += _series(family.name, family.type, family._labelnames)
    return {series.name: series for series in found}
