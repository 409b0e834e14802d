"""GPU leases on a real redis-server: N workers that all see every GPU end up on N different GPUs,
each pinned to its own GPU (CUDA_VISIBLE_DEVICES) before CUDA starts. The GPU listing and the
pinning are tested with fakes: no GPU, no nvidia-smi, no torch.cuda call."""

from __future__ import annotations

import sys
import time
import types

import pytest

from tests.support.stack import RedisProcess
from workers.gpu_claim import (CudaAlreadyInitialised, GpuLease, NoFreeGpu, claim_gpu, lease_key, parse_nvidia_smi,
                               visible_gpu_ids)

GPUS = ["GPU-aaaa", "GPU-bbbb"]
NVIDIA_SMI = "0, GPU-aaaa\n1, GPU-bbbb\n2, GPU-cccc\n"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("gpu-redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture()
def client(redis_server):
    client = redis_server.client()
    client.flushdb()
    return client


@pytest.fixture()
def no_torch(monkeypatch):
    """`import torch` fails: whatever the claim does, it cannot start CUDA."""
    monkeypatch.setitem(sys.modules, "torch", None)


def test_each_worker_takes_a_different_gpu_and_the_extra_one_fails_clearly(redis_server, client, no_torch):
    env1, env2 = {}, {}
    first = claim_gpu(redis_server.url, "worker-1", ttl_s=5, gpu_ids=GPUS, environ=env1)
    second = claim_gpu(redis_server.url, "worker-2", ttl_s=5, gpu_ids=GPUS, environ=env2)
    assert {first.gpu_id, second.gpu_id} == set(GPUS)
    # Each process sees only its own GPU, as cuda:0.
    assert env1 == {"CUDA_VISIBLE_DEVICES": first.gpu_id} and env2 == {"CUDA_VISIBLE_DEVICES": second.gpu_id}
    assert first.index == second.index == 0
    third = GpuLease(client, GPUS, "worker-3", ttl_s=5)
    with pytest.raises(NoFreeGpu, match="worker-1.*worker-2|worker-2.*worker-1"):
        third.acquire(wait_s=0.2)
    first.release()
    assert third.acquire(wait_s=1) == GPUS.index(first.gpu_id)
    assert third.gpu_id == first.gpu_id
    second.release()
    third.release()
    assert client.keys("rerankq:gpu:*") == []


def test_a_dead_workers_lease_expires_and_only_the_owner_renews(client):
    dead = GpuLease(client, GPUS[:1], "dead", ttl_s=1)
    assert dead.try_acquire() == 0  # never renewed: the process "died"
    other = GpuLease(client, GPUS[:1], "other", ttl_s=1)
    assert other.try_acquire() is None
    assert other.renew() is False  # holds nothing yet
    assert other.acquire(wait_s=5) == 0  # after the TTL
    assert client.get(lease_key(GPUS[0])) == b"other"
    assert dead.renew() is False  # the old owner cannot take it back
    dead.release()  # nor delete it
    assert client.get(lease_key(GPUS[0])) == b"other"


def test_keep_alive_outlives_the_ttl(client):
    lease = GpuLease(client, GPUS[:1], "alive", ttl_s=1)
    assert lease.try_acquire() == 0
    lease.pin({})  # pinning changes the CUDA ordinal, not the lease
    lease.keep_alive()
    time.sleep(2.5)
    assert client.get(lease_key(GPUS[0])) == b"alive"
    lease.release()
    assert client.get(lease_key(GPUS[0])) is None


def test_no_visible_gpu_is_an_error(redis_server):
    with pytest.raises(NoFreeGpu, match="sees no GPU"):
        claim_gpu(redis_server.url, "w", ttl_s=1, gpu_ids=[], environ={})


def test_the_gpus_are_listed_by_nvidia_smi_without_torch(no_torch):
    assert parse_nvidia_smi(NVIDIA_SMI + "\n") == [("0", "GPU-aaaa"), ("1", "GPU-bbbb"), ("2", "GPU-cccc")]
    assert visible_gpu_ids({}, query=lambda: NVIDIA_SMI) == ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
    assert visible_gpu_ids({}, query=lambda: "") == []


@pytest.mark.parametrize("visible, expected", [
    ("1", ["GPU-bbbb"]),
    ("2,0", ["GPU-cccc", "GPU-aaaa"]),
    ("GPU-cccc", ["GPU-cccc"]),
    ("0,7,1", ["GPU-aaaa"]),  # CUDA stops at the first entry that names no GPU
    ("", []),  # CUDA_VISIBLE_DEVICES="" hides every GPU
])
def test_an_existing_cuda_visible_devices_narrows_the_list(visible, expected, no_torch):
    assert visible_gpu_ids({"CUDA_VISIBLE_DEVICES": visible}, query=lambda: NVIDIA_SMI) == expected


def test_the_claim_lists_pins_and_leases_before_any_cuda_call(redis_server, client, monkeypatch):
    """A fake torch whose every CUDA call except is_initialized() fails: the whole claim runs
    before CUDA, and CUDA_VISIBLE_DEVICES is set by the time torch could first look at it."""
    environ: dict[str, str] = {}
    seen_at_first_cuda_call = []

    class Cuda:
        def is_initialized(self):
            return False

        def __getattr__(self, name):
            seen_at_first_cuda_call.append(dict(environ))
            raise AssertionError(f"torch.cuda.{name} called during the claim")

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=Cuda()))
    monkeypatch.setattr("workers.gpu_claim.query_nvidia_smi", lambda: NVIDIA_SMI)
    client.set(lease_key("GPU-aaaa"), "someone-else")
    lease = claim_gpu(redis_server.url, "worker-1", ttl_s=5, environ=environ)
    try:
        assert seen_at_first_cuda_call == []
        assert lease.gpu_id == "GPU-bbbb" and lease.index == 0  # the caller uses cuda:0
        assert environ == {"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}
        assert client.get(lease_key("GPU-bbbb")) == b"worker-1"
    finally:
        lease.release()


def test_claiming_after_cuda_started_is_refused(redis_server, client, monkeypatch):
    cuda = types.SimpleNamespace(is_initialized=lambda: True)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    environ: dict[str, str] = {}
    with pytest.raises(CudaAlreadyInitialised, match="before any torch.cuda call"):
        claim_gpu(redis_server.url, "late", ttl_s=1, gpu_ids=GPUS, environ=environ)
    assert environ == {} and client.keys("rerankq:gpu:*") == []


def test_without_nvidia_smi_the_error_says_what_to_add(monkeypatch, no_torch):
    monkeypatch.setattr("workers.gpu_claim.shutil.which", lambda _name: None)
    with pytest.raises(NoFreeGpu, match="NVIDIA_DRIVER_CAPABILITIES"):
        visible_gpu_ids({})
