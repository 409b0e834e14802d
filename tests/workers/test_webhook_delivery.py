"""One delivery attempt (workers.webhooks.post_summary) against a real HTTP receiver on loopback:
refused by address unless RERANKQ_WEBHOOK_ALLOW_PRIVATE, and sent to the checked address with the
original Host header when allowed."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.settings import Settings
from core.webhooks import verify_signature
from store.callbacks import CallbackTarget
from workers.webhooks import post_summary

SECRET = "delivery-secret"


@pytest.fixture()
def receiver():
    seen: list[tuple[str, dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen
    yield server
    server.shutdown()


def settings(port: int, **values) -> Settings:
    return Settings(_env_file=None, webhook_allowed_hosts=f"127.0.0.1:{port},localhost:{port}",
                    webhook_secret=SECRET, webhook_timeout_s=10, **values)


def target(url: str) -> CallbackTarget:
    now = datetime.now(timezone.utc)
    return CallbackTarget("job-1", url, 0, "succeeded", now, now, None)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_receiver_is_refused_without_the_setting(receiver, host):
    port = receiver.server_address[1]
    error, final = post_summary(settings(port), target(f"http://{host}:{port}/hook"))
    assert error.startswith(f"not delivered: callback_url host '{host}' resolves to ")
    assert "a loopback address" in error and "RERANKQ_WEBHOOK_ALLOW_PRIVATE" in error
    assert final  # retrying cannot make a loopback address public
    assert receiver.seen == []


@pytest.mark.slow  # the receiver thread takes seconds to stop
def test_with_the_setting_the_checked_address_gets_the_post_for_the_named_host(receiver):
    port = receiver.server_address[1]
    error, final = post_summary(settings(port, webhook_allow_private=True), target(f"http://localhost:{port}/hook"))
    assert (error, final) == (None, False)
    [(path, headers, body)] = receiver.seen
    assert path == "/hook" and headers["Host"] == f"localhost:{port}"
    assert verify_signature(SECRET, body, headers)
