"""Start a worker process: Celery threads pool consuming this model's queues, model loaded
in `worker_init` (before any message is taken), stopped cleanly in `worker_shutdown`."""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional

from celery import signals

from core.settings import Settings
from workers.queue import make_celery, queues_for
from workers.tasks import register

log = logging.getLogger(__name__)


def worker_argv(settings: Settings, hostname: str, loglevel: str) -> list[str]:
    return [
        "worker",
        "--pool=threads",
        f"--concurrency={settings.worker_concurrency}",
        f"--queues={','.join(queues_for(settings.served_model))}",
        f"--hostname={hostname}",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        "--prefetch-multiplier=1",
    ]


def run_worker(settings: Settings, hostname: Optional[str] = None, loglevel: str = "INFO") -> None:
    from workers import runtime as runtime_module
    from workers.metrics import on_batch, start_metrics_server

    hostname = hostname or f"rerankq-{socket.gethostname()}-{os.getpid()}"
    app = make_celery(settings)
    register(app)

    @signals.worker_init.connect(weak=False)
    def _load(**_kwargs) -> None:
        runtime = runtime_module.build_runtime(settings, app, on_batch=on_batch, hostname=hostname)
        start_metrics_server(settings.metrics_port, runtime)

    @signals.worker_shutdown.connect(weak=False)
    def _stop(**_kwargs) -> None:
        try:
            runtime_module.get_runtime().stop()
        except RuntimeError:
            pass

    app.worker_main(worker_argv(settings, hostname, loglevel))
