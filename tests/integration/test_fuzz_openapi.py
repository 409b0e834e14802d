"""Property-based fuzzing of the real API from its own OpenAPI schema (schemathesis + hypothesis).

Whatever the generated input, for every operation: never a 5xx, and every 4xx carries the
JSON error body {error, message}. (schemathesis' pytest plugin does not load on pytest 9, so
the strategies are driven by hypothesis directly.)
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install 'rerankq[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


def check(case) -> None:
    response = case.call(timeout=90)
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


def fuzz_every_operation(base_url: str, mode, headers=None) -> None:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/rerank" for op in operations) and any(op.path == "/v1/jobs" for op in operations)
    nothing_to_break = []  # negative mode: operations whose schema leaves no invalid input to make
    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(mode, headers=headers))
        def fuzz(case) -> None:
            check(case)

        try:
            fuzz()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            nothing_to_break.append(f"{operation.method.upper()} {operation.path}")
    assert not {"POST /v1/rerank", "POST /v1/jobs", "GET /v1/jobs/{job_id}"} & set(nothing_to_break), nothing_to_break


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_operation_survives_generated_input(stack, mode):
    """Positive: inputs the schema allows. Negative: inputs it forbids (wrong types, missing
    fields, out-of-range numbers), which must all be refused with a JSON 4xx."""
    fuzz_every_operation(stack.base_url, GenerationMode(mode))


@pytest.mark.parametrize("with_key", [True, False])
def test_every_operation_survives_generated_input_with_access_control_on(stack, with_key):
    """With keys required: without one every operation answers a JSON 401; with an admin key the
    generated input reaches the handlers, as above."""
    from commands.redis_server import free_port

    port = free_port()
    api = stack.extra_api(port, RERANKQ_AUTH_ENABLED="true")
    try:
        headers = None
        if with_key:
            done = stack.cli("keys", "create", "--name", "fuzz", "--scopes", "admin")
            assert done.returncode == 0, done.stderr
            headers = {"Authorization": f"Bearer {done.stdout.strip().splitlines()[-1]}"}
        fuzz_every_operation(f"http://127.0.0.1:{port}", GenerationMode.POSITIVE, headers)
    finally:
        api.stop()


# Classes found by hand that generated input missed (issue #12): numbers beyond the store's integer
# columns, NUL (PostgreSQL text refuses it), lone surrogates (UTF-8 cannot encode them), digits
# `str.isdigit` takes but `int` cannot read, and numbers of thousands of digits.
HOSTILE_TEXT = ["a\x00b", "\x00", "\ud800", "x\udc00y", "\udc00\ud800", "²", "٣", "9" * 5000]
HOSTILE_NUMBERS = [2**31, 2**63, -(2**63) - 1, 10**30]
HOSTILE_URL_TEXT = ["a\x00b", "\x00", "²", "٣", "9" * 5000, "1" + "0" * 30]  # a URL cannot carry surrogates
HOSTILE_HEADER_TEXT = ["²", "9" * 5000, "é" * 300]


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, path + (index,))
    else:
        yield path


def _put(root, path, value):
    for part in path[:-1]:
        root = root[part]
    root[path[-1]] = value


def plant_hostile_value(case, data) -> str:
    """Put one hostile value in one place of a generated valid case: a body leaf, a query or path
    parameter, or the Idempotency-Key header. Returns where, for the failure message."""
    places = [("body", path) for path in _leaves(case.body) if path] if isinstance(case.body, (dict, list)) else []
    places += [("query", name) for name in case.query or {}]
    places += [("path", name) for name in case.path_parameters or {}]
    if case.method.upper() == "POST" and case.path == "/v1/jobs":
        places.append(("header", "Idempotency-Key"))
    if not places:
        return "nowhere"
    where, name = data.draw(st.sampled_from(places))
    if where == "body":
        _put(case.body, name, data.draw(st.sampled_from(HOSTILE_TEXT + HOSTILE_NUMBERS)))
    elif where == "query":
        case.query[name] = data.draw(st.sampled_from(HOSTILE_URL_TEXT))
    elif where == "path":
        case.path_parameters[name] = data.draw(st.sampled_from(HOSTILE_URL_TEXT))
    else:
        case.headers = {**(case.headers or {}), name: data.draw(st.sampled_from(HOSTILE_HEADER_TEXT))}
    return f"{where} {name}"


def test_every_operation_survives_hostile_values(stack):
    """Valid generated input with one value swapped for a hostile one: still never a 5xx, and every
    4xx carries the JSON error body."""
    schema = schemathesis.openapi.from_url(stack.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(GenerationMode.POSITIVE), data=st.data())
        def fuzz(case, data) -> None:
            where = plant_hostile_value(case, data)
            try:
                check(case)
            except AssertionError as error:
                raise AssertionError(f"hostile value in {where}: {error}") from error

        fuzz()
