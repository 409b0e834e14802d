"""RERANKQ_METRICS_REQUIRE_KEY: /metrics describes every tenant's traffic, so it can require a key
with the metrics (or admin) scope (issue #12); off, it stays open as scrapers expect."""

from __future__ import annotations

import httpx
import pytest

from commands.redis_server import free_port


@pytest.fixture(scope="module")
def metrics_keys(stack):
    keys = {}
    for name, scopes in (("scraper", "metrics"), ("submitter", "submit,read"), ("boss", "admin")):
        done = stack.cli("keys", "create", "--name", f"metrics-{name}", "--scopes", scopes)
        assert done.returncode == 0, done.stderr
        keys[name] = done.stdout.split()[-1]
    return keys


@pytest.mark.parametrize("require_key", [True, False])
def test_metrics_key_setting(stack, metrics_keys, require_key):
    port = free_port()
    api = stack.extra_api(port, RERANKQ_AUTH_ENABLED="true", RERANKQ_METRICS_REQUIRE_KEY=str(require_key).lower())
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            def scrape(key=None):
                return client.get("/metrics", headers={"Authorization": f"Bearer {key}"} if key else {})

            anonymous = scrape()
            if require_key:
                assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"
                assert scrape("rrq_not_a_key").status_code == 401
                wrong = scrape(metrics_keys["submitter"])
                assert wrong.status_code == 403 and "metrics" in wrong.json()["message"]
            else:
                assert anonymous.status_code == 200 and "rerankq_http_requests" in anonymous.text
            for name in ("scraper", "boss"):
                allowed = scrape(metrics_keys[name])
                assert allowed.status_code == 200 and "rerankq_http_requests" in allowed.text
    finally:
        api.stop()
