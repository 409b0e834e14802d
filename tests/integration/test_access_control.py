"""API keys against a real API process with access control on (the default in deployments)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.stack import secured_api, wait_job


@pytest.fixture(scope="module")
def secured(stack):
    with secured_api(stack, [("alice", "submit,read", "acme"), ("alice2", "read", "acme"), ("bob", "submit,read", "globex"),
                             ("reader", "read", None), ("root", "admin", None)]) as api:
        yield api


def call(base: str, key, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, base + path, headers=headers, timeout=60, **kwargs)


JOB = {"requests": [{"query": "q", "documents": ["a", "b"]}]}


def test_missing_and_wrong_keys_are_refused(secured):
    base, _keys = secured
    response = call(base, None, "POST", "/v1/jobs", json=JOB)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    assert call(base, "rrq_nothing_here", "POST", "/v1/jobs", json=JOB).status_code == 401
    assert call(base, None, "GET", "/healthz").status_code == 200


def test_scopes_are_enforced(secured):
    base, keys = secured
    response = call(base, keys["reader"], "POST", "/v1/jobs", json=JOB)
    assert response.status_code == 403 and "submit" in response.json()["message"]


def test_jobs_are_visible_within_a_tenant_only(secured):
    base, keys = secured
    job_id = call(base, keys["alice"], "POST", "/v1/jobs", json=JOB).json()["id"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['alice']}"}, timeout=60) as alice:
        assert wait_job(alice, job_id)["status"] == "succeeded"
    assert call(base, keys["alice2"], "GET", f"/v1/jobs/{job_id}").status_code == 200
    assert call(base, keys["bob"], "GET", f"/v1/jobs/{job_id}").status_code == 404
    assert call(base, keys["bob"], "DELETE", f"/v1/jobs/{job_id}").status_code == 404
    assert call(base, keys["root"], "GET", f"/v1/jobs/{job_id}").status_code == 200


def test_revoked_key_stops_working(secured, stack):
    base, keys = secured
    key_id = keys["bob"].split("_")[1]
    assert stack.cli("keys", "revoke", key_id).returncode == 0
    assert call(base, keys["bob"], "GET", "/v1/jobs/x").status_code == 401
    listed = stack.cli("keys", "list").stdout
    assert key_id in listed and "revoked" in listed and "rrq_" not in listed


def test_unknown_scope_is_a_clear_cli_error(stack):
    done = stack.cli("keys", "create", "--name", "x", "--scopes", "submit,fly")
    assert done.returncode != 0 and "fly" in done.stderr
