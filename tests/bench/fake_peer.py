"""A stand-in for `infinity_emb v2` that speaks its HTTP shape, for the bench's --peer tests.

Infinity cannot be installed in CI (its pins clash with ours; it lives in its own venv). This
script is installed as `<venv>/bin/infinity_emb` by the test: it parses the same arguments,
records them in $FAKE_PEER_ARGV, answers GET /health, and POST /rerank with Cohere-shaped
results (score: 1 / (1 + document length)).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._send(200, {"unix": 0}) if self.path == "/health" else self._send(404, {"detail": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/rerank":
            return self._send(404, {"detail": "not found"})
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        scores = [1.0 / (1 + len(doc)) for doc in body["documents"]]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        self._send(200, {"object": "rerank", "model": "bench", "results": [
            {"relevance_score": scores[i], "index": i, "document": None} for i in ranked]})

    def log_message(self, *_args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--model-id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    args, _rest = parser.parse_known_args()
    Path(os.environ["FAKE_PEER_ARGV"]).write_text(json.dumps(sys.argv[1:]))
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
