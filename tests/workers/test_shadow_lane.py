"""The shadow lane and the shadow settings: what a worker consumes and in which order, how
RERANKQ_SHADOW_MODELS is read, and which jobs the API samples for which shadow model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

import api.shadow as shadow
from core.settings import Settings
from core.shadow_settings import parse_shadow_models
from tests.support.stack import RedisProcess
from workers.main import worker_argv
from core.queue import make_celery, messages_in_flight, publish_chunks, queue_name, worker_queues


def test_workers_take_the_shadow_lane_last():
    assert worker_queues("Org/M") == ["rerankq.org-m.interactive", "rerankq.org-m.bulk", "rerankq.org-m.shadow"]
    argv = worker_argv(Settings(model="Org/M"), "w1", "INFO")
    assert "--queues=rerankq.org-m.interactive,rerankq.org-m.bulk,rerankq.org-m.shadow" in argv


def test_shadow_models_setting():
    assert parse_shadow_models("a:0.5, org/b ,/models/c:d:0.25") == {"a": 0.5, "org/b": 1.0, "/models/c:d": 0.25}
    assert parse_shadow_models("x:y") == {"x:y": 1.0}  # a colon not followed by a number is part of the name
    assert Settings(shadow_models="cand:0.1").shadow_models == {"cand": 0.1}
    assert Settings().shadow_models == {}
    with pytest.raises(ValidationError, match="RERANKQ_SHADOW_MODELS"):
        Settings(shadow_models="cand:1.5")


def test_only_the_default_models_jobs_are_sampled_at_each_rate(monkeypatch):
    submitted = []
    monkeypatch.setattr(shadow, "_pool", SimpleNamespace(submit=lambda fn, *args: submitted.append(args)))
    state = SimpleNamespace(settings=Settings(model="served", shadow_models="always:1,never:0,half:0.5,served:1"))
    draws = iter([0.2, 0.3, 0.7, 0.1])  # one per shadow model, in order
    shadow.shadow_later(state, "job-1", "served", 2, draw=lambda: next(draws))
    assert submitted == [(state, "job-1", 2, ["always"])]  # 0.3 >= 0 for never, 0.7 >= 0.5 for half; never itself
    shadow.shadow_later(state, "job-2", "served", 1, draw=lambda: 0.4)
    assert submitted[-1] == (state, "job-2", 1, ["always", "half"])
    shadow.shadow_later(state, "job-3", "another-model", 1, draw=lambda: 0.0)
    assert len(submitted) == 2, "requests to other models are never shadowed"


def test_lost_shadow_messages_are_seen_by_the_sweeper(tmp_path):
    """The lost-message sweep counts the shadow lane: a message there means nothing was lost."""
    server = RedisProcess(tmp_path / "redis").start()
    try:
        app = make_celery(Settings(redis_url=server.url, model="Org/M"))
        publish_chunks(app, "copy-1", [0], queue_name("Org/M", "shadow"))
        assert messages_in_flight(server.client(), worker_queues("Org/M")) == 1
    finally:
        server.stop()
