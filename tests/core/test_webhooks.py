"""Allow-list matching and HMAC signatures of webhook deliveries (pure functions)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.webhooks import callback_url_problem, sign
from rerankq.webhooks import verify_signature

ALLOWED = "hooks.example.com, 127.0.0.1:9000, *.corp.example"


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/rerank", "http://HOOKS.example.com:8080/x", "http://127.0.0.1:9000/cb",
    "https://a.corp.example/cb", "https://b.a.corp.example/cb",
])
def test_allowed_urls(url):
    assert callback_url_problem(url, ALLOWED) is None


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9001/cb", "not in the allow-list"),
    ("http://169.254.169.254/latest/meta-data", "not in the allow-list"),
    ("https://corp.example/cb", "not in the allow-list"),
    ("https://hooks.example.com.evil.net/", "not in the allow-list"),
    ("ftp://hooks.example.com/x", "http:// or https://"),
    ("/relative/path", "http:// or https://"),
    ("https://user:pw@hooks.example.com/", "credentials"),
])
def test_refused_urls(url, reason):
    assert reason in callback_url_problem(url, ALLOWED)


def test_empty_allow_list_disables_webhooks():
    assert "disabled" in callback_url_problem("https://hooks.example.com/", "")


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"j1","status":"succeeded"}'
    headers = sign("s3cret", body, timestamp=1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers == {"X-Rerankq-Timestamp": "1700000000", "X-Rerankq-Signature": f"v1={expected}"}


def test_verify_accepts_valid_and_refuses_tampered_old_or_foreign():
    body = b'{"id":"j1"}'
    headers = sign("s3cret", body, timestamp=1000)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_signature("s3cret", body, lowered, tolerance_s=300, now=1100)
    assert not verify_signature("s3cret", body + b" ", headers, now=1100)
    assert not verify_signature("other", body, headers, now=1100)
    assert not verify_signature("s3cret", body, headers, tolerance_s=300, now=2000)
    assert not verify_signature("s3cret", body, {}, now=1100)
    assert not verify_signature("s3cret", body, {**headers, "X-Rerankq-Timestamp": "1001"}, now=1100)
