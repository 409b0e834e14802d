"""The worker's liveness signal: a Redis key with a TTL plus its time in the live-worker set
(core.worker_registry), refreshed while the batcher is alive."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

import redis

from core.worker_registry import forget, record_beat

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, client: redis.Redis, hostname: str, interval_s: float, payload: Callable[[], dict]) -> None:
        self._client = client
        self._hostname = hostname
        self._interval_s = interval_s
        self._payload = payload
        self._stop = threading.Event()
        self.last_beat = 0.0  # unix time of the last successful write (exported as a metric)
        self._thread = threading.Thread(target=self._loop, name="rerankq-heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            forget(self._client, self._hostname)
        except redis.RedisError:
            pass

    def beat(self) -> None:
        body = {**self._payload(), "pid": os.getpid(), "ts": time.time()}
        ttl_ms = int(self._interval_s * 3000)
        record_beat(self._client, self._hostname, body, max(ttl_ms, 1000))
        self.last_beat = body["ts"]

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.beat()
            except redis.RedisError as error:
                log.warning("heartbeat failed: %s", error)
