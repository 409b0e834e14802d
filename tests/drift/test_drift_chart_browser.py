"""The overview's drift chart in a real headless Chromium against a real API process: a shifted score
distribution draws a rising PSI line next to the low-confidence rate; screenshot in tests/artifacts/."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from store.db import session_scope
from store.drift import set_reference
from store.tables import utcnow
from tests.support.stack import make_stack
from tests.review.test_dashboard_browser import ARTIFACTS, browser, page  # noqa: F401 - fixtures
from tests.support.scored_jobs import store_scored_job
from workers.confidence import ConfidenceRules

pytestmark = pytest.mark.browser
MODEL = "drift-demo"


@pytest.fixture()
def drifted_api(tmp_path, tiny_qwen3):
    stack = make_stack(tmp_path / "stack", tiny_qwen3, RERANKQ_MODEL_NAME=MODEL, RERANKQ_DRIFT_MIN_SCORES="50")
    rng = random.Random(3)
    rule = ConfidenceRules().reasons
    now = utcnow()

    def confident():
        return [min(1.0, rng.gauss(0.93, 0.03))] + [max(0.0, rng.gauss(0.2, 0.1)) for _ in range(7)]

    def unsure():
        return [min(1.0, max(0.0, rng.gauss(0.4, 0.08))) for _ in range(8)]

    for hours_ago in range(12, 0, -1):  # twelve steady hours, then the traffic shifts for the last four
        draw = unsure if hours_ago <= 4 else confident
        for job in range(4):
            at = now - timedelta(hours=hours_ago) + timedelta(minutes=10 + 10 * job)
            store_scored_job(stack.database_url, MODEL, [(f"q{r}", [f"d{d}" for d in range(8)], draw())
                                                         for r in range(3)], rule, finished_at=at)
    with session_scope(stack.database_url) as session:
        set_reference(session, MODEL, "r1", now - timedelta(hours=12), now - timedelta(hours=8), pinned=True)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_overview_draws_the_drift_chart(page, drifted_api):  # noqa: F811 - the fixture imported above
    page.goto(f"{drifted_api.base_url}/dashboard/overview")
    chart = page.get_by_test_id("chart-drift")
    assert chart.count() == 1
    assert f"Score drift: {MODEL}" in chart.inner_text() and "pinned" in chart.inner_text()
    legend = chart.locator("svg text.legend").all_text_contents()
    assert legend == ["PSI vs reference (capped at 1)", "low-confidence rate", "reference rate"]
    psi_points = chart.locator("svg title").all_text_contents()
    shifted = [t for t in psi_points if t.startswith("PSI vs reference")]
    assert len(shifted) >= 8, psi_points  # one PSI point per bucket with traffic
    values = [float(t.rsplit(": ", 1)[1]) for t in shifted]
    assert max(values[-4:]) > 0.2 > max(values[:4])  # low while steady, high after the shift
    chart.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "overview-drift.png"), full_page=True)
