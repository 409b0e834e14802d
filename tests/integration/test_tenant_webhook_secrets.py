"""Each tenant's webhooks are signed with its own secret (created and rotated with `rerankq keys
webhook-secret`, shown once), so no tenant can forge deliveries to another tenant's receiver; a
tenant without one cannot ask for webhooks. Real stack, API with access control on."""

from __future__ import annotations

import uuid

import httpx
import pytest

from commands.redis_server import free_port
from rerankq.webhooks import verify_signature
from tests.integration.test_webhooks_and_cache import SECRET, deliveries_for, features, receiver  # noqa: F401
from tests.support.stack import wait_job, wait_until

pytestmark = pytest.mark.slow


def cli_last_line(stack, *args: str) -> str:
    done = stack.cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(features):  # noqa: F811 - the imported fixture
    port = free_port()
    api = features.extra_api(port, RERANKQ_AUTH_ENABLED="true")
    yield f"http://127.0.0.1:{port}"
    api.stop()


def tenant_key(stack, tenant: str) -> str:
    return cli_last_line(stack, "keys", "create", "--name", f"hooks-{tenant}", "--scopes", "submit,read",
                         "--tenant", tenant)


def submit_with_callback(base: str, key: str, url: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        return client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a", "b"]}],
                                             "callback_url": url})


def delivered(base: str, key: str, receiver, job_id: str, count: int = 1):  # noqa: F811
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        assert wait_job(client, job_id)["status"] == "succeeded"
    return wait_until(lambda: deliveries_for(receiver, job_id)[count - 1:] or None, 30, "the webhook")[0]


def test_each_tenant_signs_with_its_own_secret_and_rotation_replaces_it(features, secured, receiver):  # noqa: F811
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice_key, bob_key = tenant_key(features, alice), tenant_key(features, bob)
    refused = submit_with_callback(secured, bob_key, receiver.url("/hooks/bob"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["details"][0]["field"] == "callback_url"
    assert f"rerankq keys webhook-secret --tenant {bob}" in refused.json()["message"]

    alice_secret = cli_last_line(features, "keys", "webhook-secret", "--tenant", alice)
    bob_secret = cli_last_line(features, "keys", "webhook-secret", "--tenant", bob)
    assert alice_secret.startswith("whsec_") and alice_secret != bob_secret

    accepted = submit_with_callback(secured, alice_key, receiver.url("/hooks/alice"))
    assert accepted.status_code == 202, accepted.text
    headers, body = delivered(secured, alice_key, receiver, accepted.json()["id"])
    assert verify_signature(alice_secret, body, headers, tolerance_s=60)
    assert not verify_signature(bob_secret, body, headers, tolerance_s=60), "bob could forge alice's deliveries"
    assert not verify_signature(SECRET, body, headers, tolerance_s=60), "the shared secret still signs tenants' jobs"

    rotated = cli_last_line(features, "keys", "webhook-secret", "--tenant", alice)
    assert rotated != alice_secret
    again = submit_with_callback(secured, alice_key, receiver.url("/hooks/alice"))
    headers, body = delivered(secured, alice_key, receiver, again.json()["id"])
    assert verify_signature(rotated, body, headers, tolerance_s=60)
    assert not verify_signature(alice_secret, body, headers, tolerance_s=60)
