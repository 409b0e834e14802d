"""Property-based fuzzing of the real API from its own OpenAPI schema (schemathesis + hypothesis).

Whatever the generated input, for every operation: never a 5xx, and every 4xx carries the
JSON error body {error, message}. (schemathesis' pytest plugin does not load on pytest 9, so
the strategies are driven by hypothesis directly.)
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install 'rerankq[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 25


def check(case) -> None:
    response = case.call(timeout=90)
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


def test_every_operation_survives_generated_input(stack):
    schema = schemathesis.openapi.from_url(stack.base_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/rerank" for op in operations) and any(op.path == "/v1/jobs" for op in operations)
    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            check(case)

        fuzz()
