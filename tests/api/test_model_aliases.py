"""RERANKQ_MODEL_ALIASES: parsing, which names the API then accepts, and what an alias resolves to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.errors import ApiError
from api.limits import check_model
from api.served_models import accepted_names, resolve_model
from rerankq.schemas import RerankRequest
from core.settings import Settings

ALIASES = "rerank-v3.5=default-model, rerank-english-v3.0 = default-model,rerank-x=not-served"


def settings(**values) -> Settings:
    return Settings(_env_file=None, model_name="default-model", **values)


class NoRedis:
    def scan_iter(self, *args, **kwargs):
        raise AssertionError("Redis was asked although every name is configured")


class NoWorkers:
    """A Redis with an empty worker registry (core/worker_registry.py reads a sorted set)."""

    def zrange(self, *args, **kwargs):
        return []

    def mget(self, *args, **kwargs):
        return []


def test_aliases_are_comma_separated_pairs():
    assert settings(model_aliases=ALIASES).model_aliases == {
        "rerank-v3.5": "default-model", "rerank-english-v3.0": "default-model", "rerank-x": "not-served"}
    assert settings().model_aliases == {}


@pytest.mark.parametrize("value", ["rerank-v3.5", "=default-model", "rerank-v3.5="])
def test_a_malformed_pair_names_the_setting(value):
    with pytest.raises(ValidationError, match="RERANKQ_MODEL_ALIASES: .* is not `alias=served_name`"):
        settings(model_aliases=value)


def test_an_alias_of_a_configured_model_is_accepted_without_redis():
    names = accepted_names(settings(model_aliases=ALIASES), NoRedis(), ["rerank-v3.5"])
    assert names == ["default-model", "rerank-v3.5", "rerank-english-v3.0"]


def test_an_alias_of_a_model_nobody_serves_is_refused_like_that_model():
    s = settings(model_aliases=ALIASES)
    served = accepted_names(s, NoWorkers(), ["rerank-x"])
    assert "rerank-x" not in served
    with pytest.raises(ApiError) as raised:
        check_model(RerankRequest(model="rerank-x", query="q", documents=["d"]), served)
    assert raised.value.status == 400 and raised.value.details[0].field == "model"


def test_an_alias_resolves_to_the_served_name_and_other_names_stay():
    s = settings(model_aliases=ALIASES)
    assert resolve_model(s, "rerank-v3.5") == "default-model"
    assert resolve_model(s, "default-model") == "default-model"
    assert resolve_model(s, "something-else") == "something-else"
    assert resolve_model(s, None) is None
