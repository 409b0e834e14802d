"""`rerankq up`, the README's one command: its own Redis (AOF on, under the data dir), a migrated
SQLite store, one worker and the API; a printed admin key; Ctrl-C stops every part."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from commands.redis_server import free_port
from tests.support.stack import wait_until

pytestmark = pytest.mark.slow


class UpProcess:
    """`python -m rerankq up ...` with its output collected line by line."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "rerankq", "up", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def interrupt(self, timeout_s: float = 90) -> int:
        """Ctrl-C, as a terminal sends it to the foreground process."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_of(data_dir: Path) -> list[int]:
    """Pids of live processes started for this data dir (`up` passes it to every child)."""
    marker = f"RERANKQ_DATA_DIR={data_dir.resolve()}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0") and (proc / "stat").read_text().split()[2] != "Z":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def up_env(redis_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RERANKQ_")}
    env.update(RERANKQ_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", RERANKQ_HEARTBEAT_INTERVAL_S="0.5",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    return env


def start_up(tiny_qwen3: Path, data_dir: Path, api_port: int, redis_port: int) -> UpProcess:
    args = ["--model", str(tiny_qwen3), "--port", str(api_port), "--data-dir", str(data_dir)]
    return UpProcess(args, up_env(redis_port))


def wait_ready(up: UpProcess, base_url: str, headers: dict) -> None:
    def ready():
        if up.process.poll() is not None:
            raise RuntimeError(f"rerankq up exited early ({up.process.returncode}):\n{up.output}")
        try:
            return httpx.get(f"{base_url}/readyz", headers=headers, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 180, "rerankq up to be ready", interval_s=0.2)


def test_up_runs_the_whole_service_and_ctrl_c_stops_it(tiny_qwen3, tmp_path):
    data_dir, api_port, redis_port = tmp_path / "data", free_port(), free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    up = start_up(tiny_qwen3, data_dir, api_port, redis_port)
    try:
        wait_until(lambda: re.search(r"Bearer (rrq_\S+)`", up.output), 60, "the printed admin key")
        key = re.search(r"Bearer (rrq_\S+)`", up.output).group(1)
        headers = {"Authorization": f"Bearer {key}"}
        wait_ready(up, base_url, headers)

        assert httpx.post(f"{base_url}/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 401
        answer = httpx.post(f"{base_url}/v1/rerank", headers=headers, timeout=60, json={
            "query": "capital of France", "documents": ["Paris is the capital of France.", "Bananas are yellow."]})
        assert answer.status_code == 200, answer.text
        assert sorted(r["index"] for r in answer.json()["results"]) == [0, 1]
        assert answer.json()["meta"]["model"] == str(tiny_qwen3)

        assert (data_dir / "rerankq.db").exists(), "the SQLite store lives under the data dir"
        aof = list((data_dir / "redis").rglob("appendonly*"))
        assert aof, f"Redis keeps an append-only file under the data dir: {list((data_dir / 'redis').iterdir())}"
        assert listening(redis_port) and listening(api_port)
        assert len(processes_of(data_dir)) >= 2, "the worker and the API run as children of up"
    finally:
        code = up.interrupt() if up.process.poll() is None else up.process.returncode
        up.kill()
    assert code == 0, up.output
    assert "rerankq: stopping" in up.output
    assert not listening(api_port) and not listening(redis_port), "Ctrl-C leaves no part running"
    assert processes_of(data_dir) == [], "the worker and the API have exited"
    assert "Traceback" not in up.output, up.output


def test_a_second_up_keeps_the_store_and_prints_no_new_key(tiny_qwen3, tmp_path):
    data_dir = tmp_path / "data"
    for run in range(2):
        api_port, redis_port = free_port(), free_port()
        up = start_up(tiny_qwen3, data_dir, api_port, redis_port)
        try:
            wait_until(lambda: "Ctrl-C stops everything" in up.output, 60, "rerankq up to start its parts")
        finally:
            code = up.interrupt()
            up.kill()
        assert code == 0, up.output
        printed_key = "created an admin API key" in up.output
        assert printed_key == (run == 0), up.output
    assert "API keys required" in up.output


def test_up_names_the_setting_when_the_redis_port_is_taken(tiny_qwen3, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = start_up(tiny_qwen3, tmp_path / "data", free_port(), port)
        try:
            code = up.process.wait(timeout=60)
        finally:
            up.kill()
    up._reader.join(timeout=5)
    assert code != 0
    assert f"127.0.0.1:{port}" in up.output and "RERANKQ_REDIS_URL" in up.output, up.output
