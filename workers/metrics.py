"""Worker metrics (prometheus-client, prefix `rerankq_`), served on the worker's own port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

from workers.batcher import BatchStats

POW2 = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
TOKENS = [64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536]

BATCH_PAIRS = Histogram("rerankq_batch_pairs", "Pairs per forward pass.", buckets=POW2)
BATCH_TOKENS = Histogram("rerankq_batch_tokens", "Padded tokens per forward pass.", buckets=TOKENS)
BATCH_GROUPS = Histogram("rerankq_batch_chunks", "Job chunks merged into one forward pass.", buckets=POW2)
PADDING = Histogram("rerankq_batch_padding_efficiency", "Real tokens / padded tokens per batch.",
                    buckets=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0])
QUEUE_WAIT = Histogram("rerankq_batcher_wait_seconds", "Time pairs waited in the batcher.")
INFERENCE = Histogram("rerankq_inference_duration_seconds", "One forward pass.")
PAIRS = Counter("rerankq_pairs_scored", "Pairs scored.")
BATCHES = Counter("rerankq_batches", "Forward passes run.")


def on_batch(stats: BatchStats) -> None:
    BATCH_PAIRS.observe(stats.pairs)
    BATCH_TOKENS.observe(stats.padded_tokens)
    BATCH_GROUPS.observe(stats.groups)
    PADDING.observe(stats.real_tokens / stats.padded_tokens if stats.padded_tokens else 1.0)
    QUEUE_WAIT.observe(stats.queue_wait_s)
    INFERENCE.observe(stats.inference_s)
    PAIRS.inc(stats.pairs)
    BATCHES.inc()


def start_metrics_server(port: int, runtime) -> None:
    if port:
        start_http_server(port)
