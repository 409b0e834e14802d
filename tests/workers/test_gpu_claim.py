"""GPU leases on a real redis-server: N workers that all see every GPU end up on N different GPUs."""

from __future__ import annotations

import time

import pytest

from tests.support.stack import RedisProcess
from workers.gpu_claim import GpuLease, NoFreeGpu, claim_gpu, lease_key

GPUS = ["GPU-aaaa", "GPU-bbbb"]


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


def test_each_worker_takes_a_different_gpu_and_the_extra_one_fails_clearly(redis_server, client):
    first = claim_gpu(redis_server.url, "worker-1", ttl_s=5, gpu_ids=GPUS)
    second = claim_gpu(redis_server.url, "worker-2", ttl_s=5, gpu_ids=GPUS)
    assert {first.index, second.index} == {0, 1}
    third = GpuLease(client, GPUS, "worker-3", ttl_s=5)
    with pytest.raises(NoFreeGpu, match="worker-1.*worker-2|worker-2.*worker-1"):
        third.acquire(wait_s=0.2)
    first.release()
    assert third.acquire(wait_s=1) == first.index
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
    lease.keep_alive()
    time.sleep(2.5)
    assert client.get(lease_key(GPUS[0])) == b"alive"
    lease.release()
    assert client.get(lease_key(GPUS[0])) is None


def test_no_visible_gpu_is_an_error(redis_server):
    with pytest.raises(NoFreeGpu, match="sees no GPU"):
        claim_gpu(redis_server.url, "w", ttl_s=1, gpu_ids=[])
