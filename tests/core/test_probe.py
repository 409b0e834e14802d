"""`rerankq probe`, the health check of images without curl: exit 0 only for a 200 with the expected text."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from commands.cli import app
from commands.redis_server import free_port


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status = 500 if self.path == "/broken" else 200
        body = b"rerankq_worker_ready 1.0\n" if self.path == "/metrics" else b"rerankq_worker_ready 0.0\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("path, expect, code", [
    ("/metrics", "rerankq_worker_ready 1.0", 0),
    ("/metrics", None, 0),
    ("/starting", "rerankq_worker_ready 1.0", 1),
    ("/broken", None, 1),
])
def test_probe_exit_codes(base_url, path, expect, code):
    args = ["probe", f"{base_url}{path}"] + (["--expect", expect] if expect else [])
    assert CliRunner().invoke(app, args).exit_code == code


def test_probe_of_a_closed_port_fails():
    result = CliRunner().invoke(app, ["probe", f"http://127.0.0.1:{free_port()}/healthz", "--timeout", "2"])
    assert result.exit_code == 1
