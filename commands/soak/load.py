"""Mixed client load for the soak, through the SDK as users drive the service: sync requests,
async jobs of several sizes, cancels, idempotent repeats and long polls, spread over every API
process. It records what the invariants need: every job it knows was accepted, which it cancelled,
which carry the poison document, and every latency with its start time."""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

from commands.soak.stack import POISON
from rerankq import JobCancelled, JobFailed, JobTimeout, RerankClient, RerankError

JOB_SIZES = ((1, 4), (2, 10), (1, 40), (3, 16))  # (requests, documents per request)
OPERATIONS = (("sync", 4), ("job", 4), ("repeat", 1), ("cancel", 1))


@dataclass
class LoadRecord:
    accepted: dict[str, dict] = field(default_factory=dict)  # job id -> body as submitted
    cancelled: set[str] = field(default_factory=set)  # jobs whose cancel answered `cancelled`
    poison: set[str] = field(default_factory=set)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (started, seconds) of answered calls
    client_errors: int = 0  # calls that got no definite answer within the SDK's retries (during faults)
    repeat_mismatches: int = 0  # an idempotent repeat answered with another job: must stay 0
    sync_answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_job(self, job_id: str, body: dict) -> None:
        with self.lock:
            self.accepted[job_id] = body


def documents(rng: random.Random, count: int) -> list[str]:
    return [f"document {rng.randrange(10**6)} about topic {rng.randrange(50)} and {i}" for i in range(count)]


def job_body(rng: random.Random) -> dict:
    n_requests, n_docs = rng.choice(JOB_SIZES)
    return {"requests": [{"query": f"query {rng.randrange(1000)}", "documents": documents(rng, n_docs)}
                         for _ in range(n_requests)]}


class LoadGenerator:
    def __init__(self, urls: Callable[[], list[str]], clients: int, seed: int) -> None:
        self.urls = urls
        self.clients = clients
        self.seed = seed
        self.record = LoadRecord()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 120) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)

    def submit_resolved(self, client: RerankClient, body: dict, key: str, give_up_at: float) -> Optional[str]:
        """Submit with an idempotency key until the service gives a definite answer: a submit cut off
        by a fault may have been accepted, and only the same key can tell without making a second job."""
        while time.monotonic() < give_up_at:
            try:
                accepted = client.submit(body["requests"], idempotency_key=key)
            except RerankError:
                with self.record.lock:
                    self.record.client_errors += 1
                time.sleep(0.5)
                continue
            self.record.add_job(accepted.id, body)
            return accepted.id
        return None

    def _client(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        names = [name for name, weight in OPERATIONS for _ in range(weight)]
        while not self._stop.is_set():
            urls = self.urls()
            with RerankClient(rng.choice(urls), timeout=60, max_retries=4, backoff_s=0.3) as client:
                getattr(self, f"_{rng.choice(names)}")(client, rng)

    def _timed(self, started: float) -> None:
        with self.record.lock:
            self.record.latencies.append((started, time.monotonic() - started))

    def _sync(self, client: RerankClient, rng: random.Random) -> None:
        started = time.monotonic()
        try:
            client.rerank(f"query {rng.randrange(1000)}", documents(rng, rng.choice((3, 10, 20))), wait_timeout=120)
        except RerankError:
            with self.record.lock:
                self.record.client_errors += 1
            return
        self._timed(started)
        with self.record.lock:
            self.record.sync_answers += 1

    def _job(self, client: RerankClient, rng: random.Random) -> None:
        started = time.monotonic()
        job_id = self.submit_resolved(client, job_body(rng), f"soak-{uuid.uuid4()}", started + 120)
        if job_id is None:
            return
        try:
            client.wait(job_id, timeout=120)  # long polls
        except (JobFailed, JobCancelled, JobTimeout):
            return
        except RerankError:
            with self.record.lock:
                self.record.client_errors += 1
            return
        self._timed(started)

    def _repeat(self, client: RerankClient, rng: random.Random) -> None:
        body, key = job_body(rng), f"soak-repeat-{uuid.uuid4()}"
        first = self.submit_resolved(client, body, key, time.monotonic() + 120)
        again = self.submit_resolved(client, body, key, time.monotonic() + 120)
        if first is not None and again is not None and first != again:
            with self.record.lock:
                self.record.repeat_mismatches += 1

    def _cancel(self, client: RerankClient, rng: random.Random) -> None:
        body = {"requests": [{"query": "to be cancelled", "documents": documents(rng, 60)}]}
        job_id = self.submit_resolved(client, body, f"soak-cancel-{uuid.uuid4()}", time.monotonic() + 120)
        if job_id is None:
            return
        try:
            view = client.cancel(job_id)
        except RerankError:
            return
        if view.status.value == "cancelled":
            with self.record.lock:
                self.record.cancelled.add(job_id)

    def submit_poison(self, give_up_s: float = 60) -> Optional[str]:
        """One job whose only document makes the model raise: it must fail, and nothing else may."""
        body = {"requests": [{"query": "poison", "documents": [f"a {POISON} here"]}]}
        with RerankClient(self.urls()[0], timeout=60, max_retries=4) as client:
            job_id = self.submit_resolved(client, body, f"soak-poison-{uuid.uuid4()}", time.monotonic() + give_up_s)
        if job_id is not None:
            with self.record.lock:
                self.record.poison.add(job_id)
        return job_id
