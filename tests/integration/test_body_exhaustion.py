"""A 20 MB body of tiny documents must not cost the API more than a few times its size in memory,
nor stall /healthz, whether it comes with a key, without one, or chunked (issue #12).

Measured on the real API process: its peak resident memory (VmHWM in /proc/PID/status) before and
after the body is refused. Before the fix it grew by about 1.2 GB with a key (every document built
as a pydantic object before the limit was counted) and 356 MB without one (the body parsed before
the key was checked), and /healthz waited seconds behind the parse.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from commands.redis_server import free_port

pytestmark = pytest.mark.slow

TINY_DOCUMENTS = 1_600_000
GROWTH_FACTOR = 3  # "a few times the body size"
HEALTHZ_PROMPT_S = 1.0


def tiny_documents_body() -> bytes:
    return b'{"query": "q", "documents": [' + b",".join([b'{"text":""}'] * TINY_DOCUMENTS) + b"]}"


def reset_peak_rss(pid: int) -> None:
    """Peak RSS from now on (Linux: 5 to clear_refs), so an earlier test's peak cannot hide this one's."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def chunks(body: bytes, piece: int = 65536):
    for start in range(0, len(body), piece):
        yield body[start:start + piece]


class HealthzProbe:
    """Asks /healthz every 50 ms from its own connection while the big body is sent; keeps the slowest."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                response = client.get("/healthz")
                self.latencies.append(time.monotonic() - started)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.05)

    def __enter__(self) -> "HealthzProbe":
        self._thread.start()
        while not self.latencies:  # the API answered once before the body goes out
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def keyed_api(stack):
    """(base URL, API process, submit key) of an API with access control on."""
    port = free_port()
    api = stack.extra_api(port, RERANKQ_AUTH_ENABLED="true")
    done = stack.cli("keys", "create", "--name", "exhaustion", "--scopes", "submit,read")
    assert done.returncode == 0, done.stderr
    yield f"http://127.0.0.1:{port}", api, done.stdout.strip().splitlines()[-1]
    api.stop()


@pytest.mark.parametrize("how", ["with_key", "without_key", "with_key_chunked"])
def test_a_20_mb_body_of_tiny_documents_is_refused_cheaply_and_healthz_stays_prompt(keyed_api, how):
    base_url, api, key = keyed_api
    body = tiny_documents_body()
    assert 19_000_000 < len(body) <= 20_000_000  # under RERANKQ_MAX_BODY_BYTES: the body limit lets it in
    headers = {"content-type": "application/json"}
    if how != "without_key":
        headers["Authorization"] = f"Bearer {key}"
    with httpx.Client(base_url=base_url, timeout=120) as client:
        assert client.get("/healthz").status_code == 200
        reset_peak_rss(api.pid)
        before = peak_rss_bytes(api.pid)
        with HealthzProbe(base_url) as probe:
            content = chunks(body) if how.endswith("chunked") else body
            response = client.post("/v1/rerank", content=content, headers=headers)
        after = peak_rss_bytes(api.pid)
    if how == "without_key":
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"
    else:
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["error"] == "limit_exceeded" and error["details"][0]["field"] == "documents"
        assert error["details"][0]["limit"] == 1000 and "RERANKQ_MAX_DOCUMENTS" in error["message"]
    growth = after - before
    print(f"\n{how}: API peak RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB (+{growth / 2**20:.1f} MiB) for a "
          f"{len(body) / 2**20:.1f} MiB body; /healthz slowest {max(probe.latencies) * 1000:.0f} ms over "
          f"{len(probe.latencies)} probes")
    assert growth <= GROWTH_FACTOR * len(body), f"peak RSS grew by {growth / 2**20:.0f} MiB"
    assert not probe.failures, probe.failures
    assert max(probe.latencies) < HEALTHZ_PROMPT_S, probe.latencies
    assert api.alive()
