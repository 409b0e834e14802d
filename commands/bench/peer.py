"""`--peer infinity --peer-venv DIR`: a fast in-memory rerank server on the same model, side by side.

Infinity (`infinity_emb v2`) keeps nothing: no store, no queue. It runs from its own virtual
environment (its pins clash with ours), on the same model directory and device, so the gap
between the two is what rerankq's durability and queue cost. Its HTTP shape is Cohere's:
POST /rerank {query, documents, return_documents} -> {results: [{index, relevance_score}]}.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Optional

import httpx

from commands.local_stack import stop_process
from commands.redis_server import free_port

PEERS = ("infinity",)


class PeerError(RuntimeError):
    """The peer could not start; the message names what is missing or its log."""


class InfinityPeer:
    """`<venv>/bin/infinity_emb v2 --model-id MODEL` on a free loopback port, stopped on exit."""

    rerank_path = "/rerank"
    name = "infinity"

    def __init__(self, venv: Path, model_dir: Path, log_path: Path, device: str = "cpu",
                 start_timeout_s: float = 600) -> None:
        self.executable = Path(venv) / "bin" / "infinity_emb"
        if not self.executable.exists():
            raise PeerError(f"{self.executable} is missing: install the peer in --peer-venv with "
                            "`pip install torch==2.13.0 && pip install 'infinity-emb[torch,server]==0.0.78' "
                            "torch==2.13.0`")
        self.model_dir = model_dir
        self.log_path = log_path
        self.device = "cpu" if device in ("auto", "cpu") else "cuda"
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self.process: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "InfinityPeer":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1",
               "INFINITY_ANONYMOUS_USAGE_STATS": "0", "TOKENIZERS_PARALLELISM": "false"}
        command = [str(self.executable), "v2", "--model-id", str(self.model_dir), "--served-model-name", "bench",
                   "--engine", "torch", "--device", self.device, "--host", "127.0.0.1", "--port", str(self.port),
                   "--no-bettertransformer", "--no-model-warmup", "--log-level", "warning"]
        # No warm-up: it sends the tokenizer's longest input, past the tiny bench model's 128
        # positions; the bench warms the peer with its own requests instead.
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None, "_wait_ready runs once __enter__ has started the peer"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PeerError(f"infinity_emb exited ({process.returncode}); see {self.log_path}:\n"
                                + _tail(self.log_path))
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise PeerError(f"infinity_emb was not ready after {self.start_timeout_s:.0f}s; see {self.log_path}")

    def __exit__(self, *_exc) -> None:
        if self.process is not None:
            stop_process(self.process, timeout_s=20)
            self.process = None

    def pids(self) -> dict[str, int]:
        return {"peer": self.process.pid} if self.process else {}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
