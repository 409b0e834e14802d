"""One GPU per worker when every replica sees every GPU: a Redis lease per GPU.

Docker Compose gives all replicas of a service the same device reservation, so `count: 1`
puts every replica of `--scale worker=N` on the same GPU (docker/compose#11863). With
RERANKQ_GPU_CLAIM=true the service reserves all GPUs and each worker takes the first GPU whose
lease nobody holds. Leases are keyed by the GPU's UUID, so workers on different hosts sharing
one Redis never collide, and a crashed worker's lease expires after a few heartbeats.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Sequence

import redis

log = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class NoFreeGpu(RuntimeError):
    """Every visible GPU is held by another worker."""


def lease_key(gpu_id: str) -> str:
    return f"rerankq:gpu:{gpu_id}"


class GpuLease:
    def __init__(self, client: redis.Redis, gpu_ids: Sequence[str], owner: str, ttl_s: float) -> None:
        self.client = client
        self.gpu_ids = list(gpu_ids)
        self.owner = owner
        self.ttl_ms = max(int(ttl_s * 1000), 1000)
        self.index: Optional[int] = None
        self._stop = threading.Event()

    def try_acquire(self) -> Optional[int]:
        for index, gpu_id in enumerate(self.gpu_ids):
            if self.client.set(lease_key(gpu_id), self.owner, nx=True, px=self.ttl_ms):
                self.index = index
                return index
        return None

    def acquire(self, wait_s: float) -> int:
        """The first free GPU; waits up to `wait_s` for a dead worker's lease to expire."""
        deadline = time.monotonic() + wait_s
        while True:
            index = self.try_acquire()
            if index is not None:
                return index
            if time.monotonic() >= deadline:
                holders = [self.client.get(lease_key(g)) for g in self.gpu_ids]
                raise NoFreeGpu(f"all {len(self.gpu_ids)} visible GPUs are held by other workers "
                                f"({', '.join(h.decode() if h else '?' for h in holders)}); run fewer workers "
                                "than GPUs or turn RERANKQ_GPU_CLAIM off")
            time.sleep(min(1.0, self.ttl_ms / 4000))

    def renew(self) -> bool:
        if self.index is None:
            return False
        return bool(self.client.eval(_RENEW, 1, lease_key(self.gpu_ids[self.index]), self.owner, self.ttl_ms))

    def keep_alive(self) -> None:
        """Renew in a daemon thread, three times per TTL, until release()."""
        def loop() -> None:
            while not self._stop.wait(self.ttl_ms / 3000):
                try:
                    if not self.renew():
                        log.error("lost the lease on GPU %s", self.gpu_ids[self.index])
                except redis.RedisError as error:
                    log.warning("GPU lease renewal failed: %s", error)

        threading.Thread(target=loop, name="rerankq-gpu-lease", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        if self.index is not None:
            try:
                self.client.eval(_RELEASE, 1, lease_key(self.gpu_ids[self.index]), self.owner)
            except redis.RedisError:
                pass  # it expires on its own


def visible_gpu_ids() -> list[str]:
    """UUIDs of the GPUs this process can see (index order), from torch."""
    import torch

    ids = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        ids.append(str(uuid) if uuid else f"index-{index}")
    return ids


def claim_gpu(redis_url: str, owner: str, ttl_s: float, gpu_ids: Optional[Sequence[str]] = None) -> GpuLease:
    """Take a free GPU and keep its lease alive; the caller uses f"cuda:{lease.index}"."""
    gpu_ids = visible_gpu_ids() if gpu_ids is None else list(gpu_ids)
    if not gpu_ids:
        raise NoFreeGpu("RERANKQ_GPU_CLAIM is on but this process sees no GPU")
    lease = GpuLease(redis.Redis.from_url(redis_url, socket_timeout=10), gpu_ids, owner, ttl_s)
    index = lease.acquire(wait_s=3 * ttl_s)
    lease.keep_alive()
    log.info("claimed GPU %d (%s)", index, gpu_ids[index])
    return lease
