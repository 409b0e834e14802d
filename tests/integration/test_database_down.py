"""An API on a real PostgreSQL store: NUL characters refused before PostgreSQL sees them, the database
down at submit answered 503 with the JSON error body and Retry-After (the SDK waits that long and
retries), and /readyz naming no host or port to anonymous callers (issue #12)."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from commands.redis_server import free_port
from rerankq import RerankClient
from store.migrate import upgrade
from core.queue import queues_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
PARKED_MODEL = "pg-parked-model"  # no worker serves it: accepted jobs just wait in its queue


@pytest.fixture(scope="module")
def pg_api(stack, postgres_cluster):
    """(cluster, {"open": url, "keyed": url}, admin key): two API processes on one migrated database."""
    database_url = postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    upgrade(database_url)
    env = dict(RERANKQ_DATABASE_URL=database_url, RERANKQ_MODEL_NAME=PARKED_MODEL)
    done = stack.cli("keys", "create", "--name", "pg-admin", "--scopes", "admin", **env)
    assert done.returncode == 0, done.stderr
    ports = {"open": free_port(), "keyed": free_port()}
    apis = [stack.extra_api(ports["open"], **env),
            stack.extra_api(ports["keyed"], RERANKQ_AUTH_ENABLED="true", **env)]
    try:
        yield postgres_cluster, {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}, done.stdout.split()[-1]
    finally:
        for api in apis:
            api.stop()
        stack.redis.client().delete(*queues_for(PARKED_MODEL))


@pytest.mark.parametrize("place", ["query", "instruction", "documents.0"])
def test_nul_is_refused_before_postgresql_sees_it(pg_api, place):
    _cluster, urls, _key = pg_api
    body = {"query": "q", "documents": ["a"], "instruction": "i"}
    if place == "documents.0":
        body["documents"] = ["a\x00b"]
    else:
        body[place] = "a\x00b"
    with httpx.Client(base_url=urls["open"], timeout=30) as client:
        refused = client.post("/v1/jobs", json={"requests": [body]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0]["field"] == f"requests.0.{place}"
        accepted = client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]})
        assert accepted.status_code == 202, accepted.text


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    error = response.json()
    assert error["error"] == "database_unavailable" and isinstance(error["message"], str)
    assert "127.0.0.1" not in response.text


def test_database_down_at_submit_is_503_with_retry_after_and_readyz_names_no_host(pg_api):
    cluster, urls, key = pg_api
    cluster.pause()
    try:
        with httpx.Client(base_url=urls["open"], timeout=60) as client:
            assert_unavailable(client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]}))
            assert_unavailable(client.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]},
                                           headers={"Idempotency-Key": "while-down"}))
            assert_unavailable(client.post("/v1/rerank", json={"query": "q", "documents": ["a"]}))
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
            assert ready.json()["database"].startswith("error: OperationalError")
            assert "127.0.0.1" not in ready.text and str(cluster.port) not in ready.text, ready.text
        with httpx.Client(base_url=urls["keyed"], timeout=60) as keyed:
            # the key is looked up in the database before the body is read
            assert_unavailable(keyed.post("/v1/jobs", json={"requests": [{"query": "q", "documents": ["a"]}]},
                                          headers={"Authorization": f"Bearer {key}"}))
            assert keyed.post("/v1/jobs", json={}).status_code == 401  # no key: refused without the database
    finally:
        cluster.resume()


def test_the_sdk_waits_retry_after_and_resubmits_once_the_database_is_back(pg_api):
    cluster, urls, _key = pg_api
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:
            cluster.resume()

    cluster.pause()
    try:
        with RerankClient(urls["open"], max_retries=3) as client:
            client._sleep = pause
            accepted = client.submit([{"query": "after the outage", "documents": ["a", "b"]}])
    finally:
        cluster.resume() if not pauses else None
    assert pauses == [2.0]  # the API's Retry-After, then one retry that went through
    with httpx.Client(base_url=urls["open"], timeout=30) as client:
        job = client.get(f"/v1/jobs/{accepted.id}").json()
    assert job["status"] == "queued" and job["progress"]["total"] == 2


def test_database_down_while_a_sync_request_waits_answers_202_with_the_stored_job(pg_api):
    """The job was stored before the database went away: the caller gets its id to poll (202), not a 503
    that would make it submit the same request again."""
    cluster, urls, _key = pg_api
    answer: list[httpx.Response] = []

    def rerank() -> None:
        with httpx.Client(base_url=urls["open"], timeout=90) as client:
            answer.append(client.post("/v1/rerank", json={"query": "waits through an outage", "documents": ["a"]}))

    waiter = threading.Thread(target=rerank)
    waiter.start()
    time.sleep(1.5)  # stored and queued; no worker serves the parked model, so it waits
    cluster.pause()
    try:
        waiter.join(timeout=60)
    finally:
        cluster.resume()
    assert answer and answer[0].status_code == 202, answer and answer[0].text
    job_id = answer[0].json()["id"]
    assert answer[0].headers["location"] == f"/v1/jobs/{job_id}"
    with httpx.Client(base_url=urls["open"], timeout=30) as client:
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
