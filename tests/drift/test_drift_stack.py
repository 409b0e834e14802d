"""With the real stack (API, Redis, a worker on the tiny Qwen3): the first /metrics scrape fixes the served
model's reference window at the revision its live worker announces, and later scrapes keep it."""

from __future__ import annotations

import pytest

from store.db import session_scope
from store.drift import get_reference
from store.tables import utcnow


@pytest.mark.slow
def test_a_served_revision_gets_a_reference_window_at_the_first_scrape(stack, client):
    model = str(stack.model_dir)
    revision = next(iter(stack.heartbeats().values()))["model_revision"]
    assert client.get("/metrics").status_code == 200
    with session_scope(stack.database_url) as session:
        reference = get_reference(session, model)
        assert reference is not None, "no reference window after a scrape"
        assert reference.model_revision == revision and not reference.pinned
        assert reference.window_start <= utcnow()  # other tests of this session may have scraped first
        assert (reference.window_end - reference.window_start).total_seconds() == 86400  # RERANKQ_DRIFT_REFERENCE_S
        first_start = reference.window_start
    assert client.get("/metrics").status_code == 200  # later scrapes keep the window of the same revision
    with session_scope(stack.database_url) as session:
        assert get_reference(session, model).window_start == first_start
