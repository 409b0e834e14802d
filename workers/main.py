"""Start a worker process: Celery threads pool consuming this model's queues, and the direct
consumer of its sync messages (workers/direct_consumer.py), model loaded in `worker_init` (before
any message is taken), stopped cleanly in `worker_shutdown`."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Callable, Optional

from celery import signals

from core.settings import Settings
from core.queue import INTERACTIVE, make_celery, queue_name, worker_queues
from workers.tasks import register

log = logging.getLogger(__name__)


def worker_argv(settings: Settings, hostname: str, loglevel: str, queues: Optional[list[str]] = None) -> list[str]:
    return [
        "worker",
        "--pool=threads",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={','.join(queues or worker_queues(settings.served_model))}",
        f"--hostname={hostname}",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        "--prefetch-multiplier=1",
    ]


EXIT_MODEL_LOAD_FAILED = 78
EXIT_CONSUMER_DIED = 70  # EX_SOFTWARE: the consumer ended without being asked to


def exit_code_after_consumer(code: object, shutdown_requested: bool) -> int:
    """The process's exit code once Celery's worker_main has returned. Celery ends with 0 after an
    'Unrecoverable error' too (kombu's Redis transport can raise one while it restores unacked
    messages over a connection a broker restart just closed): a worker that stopped without a
    shutdown signal must exit non-zero, so that any restart policy starts it again."""
    if not shutdown_requested:
        return EXIT_CONSUMER_DIED
    return code if isinstance(code, int) else (0 if code is None else 1)


def exit_on_load_failure(error: Exception) -> None:
    """Without a model the worker must not take messages: say why and end the process."""
    log.critical("worker cannot start: %s", error)
    print(f"rerankq worker: cannot start: {error}", file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(EXIT_MODEL_LOAD_FAILED)


def run_worker(settings: Settings, hostname: Optional[str] = None, loglevel: str = "INFO", *,
               queues: Optional[list[str]] = None, build: Optional[Callable] = None) -> None:
    """`queues` and `build` (default: this model's queues, runtime.build_runtime) are what the
    degraded-fallback worker changes (workers/fallback.py)."""
    from workers import runtime as runtime_module
    from workers.metrics import model_loaded, on_batch, start_metrics_server, worker_stopping

    hostname = hostname or f"rerankq-{socket.gethostname()}-{os.getpid()}"
    lease = None
    if settings.gpu_claim:
        from workers.gpu_claim import claim_gpu

        lease = claim_gpu(settings.redis_url, hostname, ttl_s=3 * settings.heartbeat_interval_s)
        settings = settings.model_copy(update={"device": f"cuda:{lease.index}"})
    app = make_celery(settings)
    register(app)
    consumers: list = []  # the direct-list consumer (workers/direct_consumer.py), once the model is loaded

    @signals.worker_init.connect(weak=False)
    def _load(**_kwargs) -> None:
        started = time.monotonic()
        try:
            runtime = (build or runtime_module.build_runtime)(settings, app, on_batch=on_batch, hostname=hostname)
        except Exception as error:  # noqa: BLE001 - Celery would log it and consume with no model
            exit_on_load_failure(error)
        model_loaded(runtime, time.monotonic() - started)
        start_metrics_server(settings.metrics_port, runtime)
        interactive = queue_name(settings.served_model, INTERACTIVE)
        if interactive in (queues or worker_queues(settings.served_model)):
            from workers.direct_consumer import DirectConsumer

            consumers.append(DirectConsumer(runtime, interactive))
            consumers[-1].start()

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_kwargs) -> None:
        worker_stopping()
        for consumer in consumers:  # Celery has finished its tasks; the direct messages finish too
            consumer.stop(timeout_s=min(30.0, settings.chunk_deadline_s))
        try:
            runtime_module.get_runtime().stop()
        except RuntimeError:
            pass
        if lease is not None:
            lease.release()

    shutdown_requested = False

    @signals.worker_shutting_down.connect(weak=False)
    def _asked(**_kwargs) -> None:
        nonlocal shutdown_requested
        shutdown_requested = True
        for consumer in consumers:
            consumer.stop_taking()

    code: object = 0
    try:
        app.worker_main(worker_argv(settings, hostname, loglevel, queues))
    except SystemExit as done:
        code = done.code
    exit_code = exit_code_after_consumer(code, shutdown_requested)
    if exit_code == EXIT_CONSUMER_DIED:
        log.critical("the Celery consumer stopped without a shutdown signal; exiting %d so that the restart "
                     "policy starts this worker again", exit_code)
    sys.exit(exit_code)
