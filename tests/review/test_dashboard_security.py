"""Dashboard and review API hardening against real processes: the dashboard applies the API's scope
rules to job results, logout ends a session on the server, other tenants never see a reviewer's key
id, and every page carries the security headers."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager

import httpx
import pytest

from commands.redis_server import free_port
from tests.review.test_review_api import csrf_of
from tests.support.stack import wait_job


def make_key(review_stack, scopes: str, tenant: str) -> str:
    name = f"{scopes.replace(',', '-')}-{uuid.uuid4().hex[:6]}"
    done = review_stack.cli("keys", "create", "--name", name, "--scopes", scopes, "--tenant", tenant)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def login(base: str, key: str):
    with httpx.Client(base_url=base, timeout=60) as browser:
        token = csrf_of(browser.get("/dashboard/login").text)
        answer = browser.post("/dashboard/login", data={"api_key": key, "csrf_token": token})
        assert answer.status_code == 303, answer.text
        yield browser


@pytest.fixture(scope="module")
def tenant_job(review_stack, secured_review_api):
    """A scored job (and so a case) of a fresh tenant, and a submit+read+review key of that tenant."""
    base, _keys = secured_review_api
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    owner_key = make_key(review_stack, "submit,read,review", tenant)
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {owner_key}"}) as client:
        accepted = client.post("/v1/jobs", json={"requests": [{"query": f"secret plans {tenant}",
                                                               "documents": ["alpha", "beta"]}]})
        assert accepted.status_code == 202, accepted.text
        job = wait_job(client, accepted.json()["id"])
        assert job["status"] == "succeeded"
        cases = client.get("/v1/reviews", params={"q": tenant, "status": "all"}).json()["items"]
    assert len(cases) == 1
    return dict(tenant=tenant, job_id=job["id"], case_id=cases[0]["id"], owner_key=owner_key)


def test_a_review_only_key_cannot_read_job_results_in_the_dashboard(review_stack, secured_review_api, tenant_job):
    base, _keys = secured_review_api
    review_only = make_key(review_stack, "review", tenant_job["tenant"])
    job_id = tenant_job["job_id"]
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {review_only}"}) as api:
        assert api.get(f"/v1/jobs/{job_id}").status_code == 403  # the API's rule
    with login(base, review_only) as browser:
        assert browser.get(f"/dashboard/cases/{tenant_job['case_id']}").status_code == 200  # reviewing is allowed
        for url in (f"/dashboard/jobs/{job_id}", f"/dashboard/playground?job={job_id}", "/dashboard/jobs"):
            page = browser.get(url)
            assert page.status_code == 403, url
            assert "lacks the &#39;read&#39; scope" in page.text and "alpha" not in page.text, url
    with login(base, tenant_job["owner_key"]) as browser:  # review + read: the same pages open
        page = browser.get(f"/dashboard/jobs/{job_id}")
        assert page.status_code == 200 and "alpha" in page.text
        assert browser.get(f"/dashboard/playground?job={job_id}").status_code == 200


def test_logout_ends_the_session_on_the_server(review_stack, secured_review_api, tenant_job):
    base, _keys = secured_review_api
    with login(base, tenant_job["owner_key"]) as browser:
        stolen = browser.cookies.get("rerankq_session", path="/dashboard")
        assert browser.get("/dashboard/queue").status_code == 200
        token = csrf_of(browser.get("/dashboard/queue").text)
        assert browser.post("/dashboard/logout", data={"csrf_token": token}).status_code == 303
    with httpx.Client(base_url=base, timeout=60, cookies={"rerankq_session": stolen}) as replay:
        answer = replay.get("/dashboard/queue")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/dashboard/login")
        assert replay.get(f"/dashboard/cases/{tenant_job['case_id']}").status_code == 303


def test_other_tenants_never_see_a_reviewers_key_id(review_stack, secured_review_api, tenant_job):
    base, keys = secured_review_api
    admin = make_key(review_stack, "admin", "operators")
    admin_id = admin.split("_")[1]
    case_url = f"/v1/reviews/{tenant_job['case_id']}"
    review = {"labels": {"0": 3, "1": 0}, "decision": "reviewed"}
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as ops:
        mine = ops.post(case_url, json=review)
        assert mine.status_code == 200, mine.text
        assert [r["reviewer"] for r in mine.json()["reviews"]] == [admin_id]  # its own tenant sees it
    owner_id = tenant_job["owner_key"].split("_")[1]
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {tenant_job['owner_key']}"}) as own:
        assert own.post(case_url, json={**review, "decision": "dismissed"}).status_code == 200
        answer = own.get(case_url)
    assert answer.status_code == 200
    assert admin_id not in answer.text, "an admin's key id leaked to a tenant"
    reviewers = {r["reviewer"]: r["reviewer_name"] for r in answer.json()["reviews"]}
    assert reviewers[owner_id]  # the tenant's own reviewer stays named
    [foreign] = [r for r in reviewers if r != owner_id]
    assert foreign.startswith("external-") and reviewers[foreign] == "reviewer from another tenant"
    with login(base, tenant_job["owner_key"]) as browser:
        page = browser.get(f"/dashboard/cases/{tenant_job['case_id']}")
        assert page.status_code == 200 and "reviewer from another tenant" in page.text
        assert admin_id not in page.text


def test_every_dashboard_page_carries_the_security_headers_and_no_inline_script(secured_review_api, tenant_job):
    base, _keys = secured_review_api
    with login(base, tenant_job["owner_key"]) as browser:
        pages = ["/dashboard/login", "/dashboard/queue", "/dashboard/overview", "/dashboard/jobs",
                 f"/dashboard/jobs/{tenant_job['job_id']}", f"/dashboard/cases/{tenant_job['case_id']}",
                 "/dashboard/playground", "/dashboard/cases/999999999"]
        for url in pages:
            page = browser.get(url)
            assert page.status_code in (200, 404), url
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, url
            assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0], url
            assert page.headers["x-content-type-options"] == "nosniff", url
            assert page.headers["referrer-policy"] == "same-origin", url
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), f"{url} has an inline script"
            assert not re.search(r"\son[a-z]+\s*=", page.text), f"{url} has an inline event handler"
        static = browser.get("/dashboard/static/dashboard.js")
        assert static.headers["x-content-type-options"] == "nosniff"
    with httpx.Client(base_url=base, timeout=60) as api:
        assert api.get("/healthz").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("trusted, secure", [("127.0.0.1", True), ("10.9.8.7", False)])
def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(review_stack, trusted, secure):
    port = free_port()
    api = review_stack.extra_api(port, RERANKQ_AUTH_ENABLED="true", RERANKQ_FORWARDED_ALLOW_IPS=trusted)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as proxied:
            answer = proxied.get("/dashboard/login", headers={"X-Forwarded-Proto": "https",
                                                              "X-Forwarded-For": "203.0.113.9"})
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("rerankq_session=")
        assert ("; secure" in cookie.lower()) is secure, cookie
    finally:
        api.stop()
