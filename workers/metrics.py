"""Worker metrics (prometheus-client, prefix `rerankq_`), served on the worker's own port.

One worker process per container (or per GPU), so the default registry holds exactly this
process's numbers. Counters are declared without `_total`; prometheus-client appends it.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Optional, Sequence

from prometheus_client import (REGISTRY, Counter, Gauge, Histogram, Info, disable_created_metrics,
                               start_http_server)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from workers.batcher import BatchStats
from workers.confidence import CALIBRATION_SAMPLE, FLAT_SCORES, LOW_TOP_SCORE, SMALL_MARGIN

log = logging.getLogger(__name__)
disable_created_metrics()  # the *_created series only double what every scrape sends

POW2 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
TOKENS = [64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
SHORT_WAIT = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
INFERENCE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

# Why a chunk attempt failed (labels of rerankq_chunk_failures_total).
MODEL_ERROR = "model_error"  # the forward pass (or tokenizer) raised
DEADLINE = "deadline"  # no scores within RERANKQ_CHUNK_DEADLINE_S
DB_UNAVAILABLE = "db_unavailable"  # the store stayed unreachable for the whole retry budget
ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # the last allowed attempt failed: the job is marked failed
FAILURE_KINDS = (MODEL_ERROR, DEADLINE, DB_UNAVAILABLE, ATTEMPTS_EXHAUSTED)
REASONS = (LOW_TOP_SCORE, SMALL_MARGIN, FLAT_SCORES, CALIBRATION_SAMPLE)

BATCH_PAIRS = Histogram("rerankq_batch_pairs", "Pairs per forward pass.", buckets=POW2)
BATCH_TOKENS = Histogram("rerankq_batch_tokens", "Padded tokens per forward pass (pairs x longest pair).",
                         buckets=TOKENS)
BATCH_CHUNKS = Histogram("rerankq_batch_chunks", "Job chunks merged into one forward pass.", buckets=POW2)
PADDING = Histogram("rerankq_batch_padding_efficiency_ratio", "Real tokens / padded tokens, per forward pass.",
                    buckets=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0])
REAL_TOKENS = Counter("rerankq_batch_real_tokens", "Real (unpadded) tokens in forward passes.")
PADDED_TOKENS = Counter("rerankq_batch_padded_tokens", "Tokens computed in forward passes, padding included.")
BATCHER_WAIT = Histogram("rerankq_batcher_wait_seconds", "Time pairs waited in the batcher for a forward pass.",
                         buckets=SHORT_WAIT)
QUEUE_WAIT = Histogram("rerankq_queue_wait_seconds", "Time from publishing a chunk to a worker starting it.",
                       buckets=QUEUE_WAIT_BUCKETS)
INFERENCE = Histogram("rerankq_inference_duration_seconds", "Duration of one forward pass.",
                      buckets=INFERENCE_BUCKETS)
PAIRS = Counter("rerankq_pairs_scored", "Pairs scored.")
BATCHES = Counter("rerankq_batches", "Forward passes run.")
CHUNK_FAILURES = Counter("rerankq_chunk_failures", "Failed chunk attempts, by kind.", ["kind"])
LOW_CONFIDENCE = Counter("rerankq_low_confidence_cases", "Requests flagged for review, by their first reason.",
                         ["reason"])
SCORED_REQUESTS = Counter("rerankq_scored_requests", "Requests of finished jobs checked by the low-confidence rules.")
MODEL_LOAD = Gauge("rerankq_model_load_seconds", "Time to load and warm the model when the worker started.")
WORKER_READY = Gauge("rerankq_worker_ready", "1 while the model is loaded and warm.")
WORKER_INFO = Info("rerankq_worker", "The model this worker serves and where it runs.")
WORKER_INFO_LABELS = ("hostname", "model", "revision", "backend", "score_type", "device", "dtype")

for _kind in FAILURE_KINDS:
    CHUNK_FAILURES.labels(kind=_kind)
for _reason in REASONS:
    LOW_CONFIDENCE.labels(reason=_reason)


def on_batch(stats: BatchStats) -> None:
    BATCH_PAIRS.observe(stats.pairs)
    BATCH_TOKENS.observe(stats.padded_tokens)
    BATCH_CHUNKS.observe(stats.groups)
    PADDING.observe(stats.real_tokens / stats.padded_tokens if stats.padded_tokens else 1.0)
    REAL_TOKENS.inc(stats.real_tokens)
    PADDED_TOKENS.inc(stats.padded_tokens)
    BATCHER_WAIT.observe(stats.queue_wait_s)
    INFERENCE.observe(stats.inference_s)
    PAIRS.inc(stats.pairs)
    BATCHES.inc()


def observe_queue_wait(published_at: Optional[float]) -> None:
    """Hosts' clocks may disagree by a little: a negative wait counts as zero."""
    if published_at is not None:
        QUEUE_WAIT.observe(max(0.0, time.time() - float(published_at)))


def count_failure(kind: str) -> None:
    CHUNK_FAILURES.labels(kind=kind).inc()


def count_flagged(reasons_per_request: Iterable[Sequence[str]]) -> None:
    """After a finished job's cases are committed: one entry per request the rules looked at."""
    for reasons in reasons_per_request:
        SCORED_REQUESTS.inc()
        if reasons:
            LOW_CONFIDENCE.labels(reason=reasons[0]).inc()


class WorkerCollector:
    """Values read at scrape time: heartbeat age, GPU memory, batcher failures."""

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def describe(self) -> list:
        return [*self._families(), *gpu_memory_families()]

    def collect(self) -> list:
        heartbeat, batch_failures, splits = self._families()
        beat = getattr(self.runtime.heartbeat, "last_beat", None)
        if beat:
            heartbeat.add_metric([], beat)
        totals = self.runtime.batcher.totals
        batch_failures.add_metric([], totals.failures)
        splits.add_metric([], totals.splits)
        return [heartbeat, batch_failures, splits,
                *read_gpu_memory(gpu_memory_families(), self.runtime.backend.info.device)]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily("rerankq_worker_last_heartbeat_timestamp_seconds",
                              "Unix time of this worker's last successful heartbeat to Redis."),
            CounterMetricFamily("rerankq_batch_failures", "Forward passes that raised."),
            CounterMetricFamily("rerankq_batch_splits", "Failed batches split in two to isolate a bad pair."),
        )


def gpu_memory_families() -> list[GaugeMetricFamily]:
    labels = ["device"]
    return [
        GaugeMetricFamily("rerankq_gpu_memory_allocated_bytes", "GPU memory held by tensors of this process.",
                          labels=labels),
        GaugeMetricFamily("rerankq_gpu_memory_reserved_bytes", "GPU memory reserved by this process's allocator.",
                          labels=labels),
        GaugeMetricFamily("rerankq_gpu_memory_total_bytes", "Total memory of the GPU.", labels=labels),
    ]


def read_gpu_memory(families: list[GaugeMetricFamily], device: str) -> list[GaugeMetricFamily]:
    """Only on a CUDA worker whose CUDA context exists already: a scrape never initialises CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda"):
        return []
    try:
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return []
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        allocated, reserved, total = families
        label = [f"cuda:{index}"]
        allocated.add_metric(label, torch.cuda.memory_allocated(index))
        reserved.add_metric(label, torch.cuda.memory_reserved(index))
        total.add_metric(label, torch.cuda.mem_get_info(index)[1])
        return families
    except Exception as error:  # noqa: BLE001 - a scrape must not fail on a driver hiccup
        log.debug("GPU memory not readable: %s", error)
        return []


_collector: Optional[WorkerCollector] = None


def model_loaded(runtime, load_seconds: float) -> None:
    """Called once the model is warm: load time, what is served, ready, scrape-time values."""
    global _collector
    info = runtime.backend.info
    MODEL_LOAD.set(load_seconds)
    WORKER_INFO.info(dict(zip(WORKER_INFO_LABELS, (runtime.hostname, runtime.settings.served_model, info.revision,
                                                   info.backend, info.score_type, info.device, info.dtype))))
    WORKER_READY.set(1)
    if _collector is None:
        _collector = WorkerCollector(runtime)
        REGISTRY.register(_collector)
    else:
        _collector.runtime = runtime


def worker_stopping() -> None:
    WORKER_READY.set(0)


def start_metrics_server(port: int, runtime=None) -> None:
    """`/metrics` on RERANKQ_METRICS_PORT (0: none), on all interfaces so Prometheus can reach it."""
    if port:
        start_http_server(port)
        log.info("metrics on :%d/metrics", port)
