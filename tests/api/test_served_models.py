"""Which model names the API accepts, and what GET /v1/models reports, from settings and heartbeats."""

from __future__ import annotations

from api.served_models import accepted_names, served_models
from core.settings import Settings
from core.queue import PUBLISHED_AT, make_celery

WORKERS = [
    {"hostname": "a", "model": "tiny-ce", "ready": True, "model_revision": "r1", "backend": "seq-cls"},
    {"hostname": "b", "model": "tiny-ce", "ready": True, "model_revision": "r2", "backend": "seq-cls"},
    {"hostname": "c", "model": "tiny-ce", "ready": True, "model_revision": "r2", "backend": "seq-cls"},
    {"hostname": "d", "model": "loading", "ready": False},
]


def settings(**values) -> Settings:
    return Settings(_env_file=None, model_name="default-model", **values)


def test_configured_models_come_first_then_those_only_workers_know():
    models = served_models(settings(models="spare, default-model"), WORKERS)
    assert [m.id for m in models] == ["default-model", "spare", "tiny-ce"]
    default, spare, ce = models
    assert default.default and not default.ready and default.workers == 0
    assert not spare.default and spare.revision is None
    assert ce.workers == 3 and ce.ready and ce.revision == "r2" and ce.backend == "seq-cls"


def test_a_worker_still_loading_does_not_count():
    assert "loading" not in [m.id for m in served_models(settings(), WORKERS)]


def test_configured_names_need_no_redis_round_trip():
    class NoRedis:
        def __getattr__(self, name):
            raise AssertionError("Redis was asked although every name is configured")

    assert accepted_names(settings(models="spare"), NoRedis(), [None, "spare", "default-model"]) == [
        "default-model", "spare"]


def test_an_unconfigured_name_is_looked_up_in_heartbeats():
    class Heartbeats:
        def zrange(self, key, start, end):
            return [b"a"]

        def mget(self, keys):
            return [b'{"model": "tiny-ce", "ready": true}' for _key in keys]

    assert accepted_names(settings(), Heartbeats(), ["tiny-ce"]) == ["default-model", "tiny-ce"]
    assert "other" not in accepted_names(settings(), Heartbeats(), ["other"])


def test_models_setting_is_comma_separated():
    assert settings(models=" a, b ,,a").accepted_models == ["default-model", "a", "b"]


def test_task_events_follow_the_setting():
    assert make_celery(settings()).conf.worker_send_task_events is False
    app = make_celery(settings(worker_send_events=True))
    assert app.conf.worker_send_task_events is True and app.conf.task_send_sent_event is True
    assert PUBLISHED_AT.startswith("rerankq_")
