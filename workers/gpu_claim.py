"""One GPU per worker when every replica sees every GPU: a Redis lease per GPU.

Docker Compose gives all replicas of a service the same device reservation, so `count: 1`
puts every replica of `--scale worker=N` on the same GPU (docker/compose#11863). With
RERANKQ_GPU_CLAIM=true the service reserves all GPUs and each worker takes the first GPU whose
lease nobody holds. Leases are keyed by the GPU's UUID, so workers on different hosts sharing
one Redis never collide, and a crashed worker's lease expires after a few heartbeats.

The claim happens before CUDA starts in this process. The GPUs are listed with `nvidia-smi`
(NVML, no CUDA context) and the claimed one is then made the only one CUDA can see
(CUDA_VISIBLE_DEVICES=<its UUID>), so the worker uses `cuda:0`, and nothing that defaults to
the current device (`torch.cuda.is_bf16_supported()`, libraries calling `current_device()`)
can put a stray context on another worker's GPU. CUDA reads CUDA_VISIBLE_DEVICES once, when it
initialises: asking torch for the GPUs first (`get_device_properties`) would freeze the full list.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Callable, MutableMapping, Optional, Sequence

import redis

from core.redis_keys import gpu_lease_key

log = logging.getLogger(__name__)

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

VISIBLE = "CUDA_VISIBLE_DEVICES"
NVIDIA_SMI_QUERY = ["--query-gpu=index,uuid", "--format=csv,noheader"]


class NoFreeGpu(RuntimeError):
    """Every visible GPU is held by another worker."""


class CudaAlreadyInitialised(RuntimeError):
    """CUDA started before the claim, so CUDA_VISIBLE_DEVICES can no longer narrow it to one GPU."""


def lease_key(gpu_id: str) -> str:
    return gpu_lease_key(gpu_id)


class GpuLease:
    """`gpu_id` is the claimed GPU. `index` is its CUDA ordinal in this process: its position in
    `gpu_ids` after acquire(), 0 once pin() has made it the only GPU CUDA sees."""

    def __init__(self, client: redis.Redis, gpu_ids: Sequence[str], owner: str, ttl_s: float) -> None:
        self.client = client
        self.gpu_ids = list(gpu_ids)
        self.owner = owner
        self.ttl_ms = max(int(ttl_s * 1000), 1000)
        self.gpu_id: Optional[str] = None
        self.index: Optional[int] = None
        self._stop = threading.Event()

    def try_acquire(self) -> Optional[int]:
        for index, gpu_id in enumerate(self.gpu_ids):
            if self.client.set(lease_key(gpu_id), self.owner, nx=True, px=self.ttl_ms):
                self.gpu_id, self.index = gpu_id, index
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
                                f"({', '.join((h.decode() if isinstance(h, bytes) else h) or '?' for h in holders)}); run fewer workers "
                                "than GPUs or turn RERANKQ_GPU_CLAIM off")
            time.sleep(min(1.0, self.ttl_ms / 4000))

    def pin(self, environ: MutableMapping[str, str]) -> None:
        """Make the claimed GPU the only one CUDA will see in this process (it becomes cuda:0)."""
        if self.gpu_id is None:
            raise RuntimeError("pin() before a GPU was acquired")
        environ[VISIBLE] = self.gpu_id
        self.index = 0

    def renew(self) -> bool:
        if self.gpu_id is None:
            return False
        return bool(self.client.eval(_RENEW, 1, lease_key(self.gpu_id), self.owner, self.ttl_ms))

    def keep_alive(self) -> None:
        """Renew in a daemon thread, three times per TTL, until release()."""
        def loop() -> None:
            while not self._stop.wait(self.ttl_ms / 3000):
                try:
                    if not self.renew():
                        log.error("lost the lease on GPU %s", self.gpu_id)
                except redis.RedisError as error:
                    log.warning("GPU lease renewal failed: %s", error)

        threading.Thread(target=loop, name="rerankq-gpu-lease", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        if self.gpu_id is not None:
            try:
                self.client.eval(_RELEASE, 1, lease_key(self.gpu_id), self.owner)
            except redis.RedisError:
                pass  # it expires on its own


def query_nvidia_smi() -> str:
    """`index, uuid` per GPU of this container, from NVML: no CUDA context is created."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        raise NoFreeGpu("RERANKQ_GPU_CLAIM needs nvidia-smi to list the GPUs without starting CUDA; "
                        "run the worker with NVIDIA_DRIVER_CAPABILITIES including `utility` "
                        "(the CUDA base images set compute,utility)")
    result = subprocess.run([binary, *NVIDIA_SMI_QUERY], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NoFreeGpu(f"nvidia-smi failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def parse_nvidia_smi(output: str) -> list[tuple[str, str]]:
    """(index, uuid) pairs from `nvidia-smi --query-gpu=index,uuid --format=csv,noheader`."""
    gpus = []
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 2 and fields[0].isdigit() and fields[1]:
            gpus.append((fields[0], fields[1]))
    return gpus


def visible_gpu_ids(environ: Optional[MutableMapping[str, str]] = None,
                    query: Optional[Callable[[], str]] = None) -> list[str]:
    """UUIDs of the GPUs this process may use, listed without touching CUDA.

    nvidia-smi lists what the container was given; an existing CUDA_VISIBLE_DEVICES narrows that
    (UUIDs as they are, indices mapped through nvidia-smi's numbering, which is CUDA's on
    identical GPUs). Like CUDA, the list stops at the first entry that names no GPU.
    """
    environ = os.environ if environ is None else environ
    gpus = parse_nvidia_smi((query or query_nvidia_smi)())
    wanted = environ.get(VISIBLE)
    if wanted is None:
        return [uuid for _index, uuid in gpus]
    by_index = dict(gpus)
    ids = []
    for entry in (e.strip() for e in wanted.split(",")):
        if entry.isdigit() and entry in by_index:
            ids.append(by_index[entry])
        elif entry.startswith(("GPU-", "MIG-")):
            ids.append(entry)
        else:
            break
    return ids


def ensure_cuda_not_started() -> None:
    """Refuse to claim after torch has initialised CUDA: the pin would have no effect."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():
        raise CudaAlreadyInitialised("CUDA was initialised before the GPU claim, so this worker would still see "
                                     "every GPU; claim the GPU before any torch.cuda call")


def claim_gpu(redis_url: str, owner: str, ttl_s: float, gpu_ids: Optional[Sequence[str]] = None,
              environ: Optional[MutableMapping[str, str]] = None) -> GpuLease:
    """Take a free GPU, make it the only one CUDA sees (CUDA_VISIBLE_DEVICES in `environ`,
    default os.environ) and keep its lease alive; the caller uses f"cuda:{lease.index}" (cuda:0)."""
    environ = os.environ if environ is None else environ
    ensure_cuda_not_started()
    gpu_ids = visible_gpu_ids(environ) if gpu_ids is None else list(gpu_ids)
    if not gpu_ids:
        raise NoFreeGpu("RERANKQ_GPU_CLAIM is on but this process sees no GPU")
    lease = GpuLease(redis.Redis.from_url(redis_url, socket_timeout=10), gpu_ids, owner, ttl_s)
    lease.acquire(wait_s=3 * ttl_s)
    lease.pin(environ)
    lease.keep_alive()
    log.info("claimed GPU %s; %s=%s, so it is cuda:%d here", lease.gpu_id, VISIBLE, lease.gpu_id, lease.index)
    return lease
