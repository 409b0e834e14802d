"""Score drift: two different score distributions are fed through the store's own write path; PSI and
KS stay low while traffic looks like the reference and rise when it shifts, the exported gauge follows,
and Prometheus' own rule tester (promtool) fires RerankqScoreDrift on it only after the shift."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api import drift_metrics
from store.drift_report import model_drift
from core.drift_stats import psi
from core.settings import Settings
from store.db import session_scope
from store.drift import get_reference, pin_reference
from store.migrate import upgrade
from store.tables import utcnow
from tests.support.scored_jobs import store_scored_job
from workers.confidence import ConfidenceRules

MODEL = "tiny-reranker"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request, tmp_path) -> Settings:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("postgres_cluster").create_database(f"t_{uuid.uuid4().hex[:12]}")
    upgrade(url)
    return Settings(database_url=url, drift_window_s=1800, drift_reference_s=3600, drift_min_scores=50,
                    drift_cache_s=0, model=MODEL)


def feed(settings: Settings, finished_at: datetime, scores_of_requests: list[list[float]], revision: str = "r1"):
    """One job of these requests, scored and saved as a worker saves it, finished at `finished_at`."""
    requests = [(f"q{i}", [f"d{j}" for j in range(len(s))], s) for i, s in enumerate(scores_of_requests)]
    store_scored_job(settings.database_url, MODEL, requests, ConfidenceRules.from_settings(settings).reasons,
                     revision, finished_at)


def traffic(settings: Settings, start: datetime, span: timedelta, jobs: int, request) -> None:
    """`jobs` jobs of three requests each, spread evenly over [start, start + span)."""
    for i in range(jobs):
        feed(settings, start + span * (i + 0.5) / jobs, [request() for _ in range(3)])


def test_psi_and_ks_rise_when_the_score_distribution_shifts(settings):
    rng = random.Random(7)

    def clip(value: float) -> float:
        return min(1.0, max(0.0, value))

    def confident() -> list[float]:  # one clear answer among seven poor ones
        return [clip(rng.gauss(0.93, 0.03))] + [clip(rng.gauss(0.2, 0.1)) for _ in range(7)]

    def unsure() -> list[float]:  # everything middling: most of these requests get flagged
        return [clip(rng.gauss(0.4, 0.08)) for _ in range(8)]
    t0 = utcnow() - timedelta(hours=5)
    with session_scope(settings.database_url) as session:  # revision r1 starts serving: its reference begins
        reference = model_drift(session, settings, MODEL, "r1", now=t0)
    assert (reference.reference_start, reference.revision, reference.psi) == (t0, "r1", None)
    traffic(settings, t0, timedelta(hours=1), 20, confident)  # the reference window fills

    same_until = t0 + timedelta(hours=3)
    traffic(settings, same_until - timedelta(minutes=30), timedelta(minutes=30), 20, confident)
    with session_scope(settings.database_url) as session:
        steady = model_drift(session, settings, MODEL, "r1", now=same_until)
    assert steady.reference_scores == steady.recent_scores == 480
    assert steady.psi < 0.1 and steady.ks < 0.15

    now = utcnow()
    traffic(settings, now - timedelta(minutes=30), timedelta(minutes=29), 20, unsure)
    with session_scope(settings.database_url) as session:
        shifted = model_drift(session, settings, MODEL, "r1", now=now)
    assert shifted.psi > 0.2 and shifted.psi > 5 * steady.psi
    assert shifted.ks > 0.5 and shifted.ks > 3 * steady.ks
    assert shifted.recent_rate > shifted.reference_rate  # unsure scores are flagged low-confidence more often
    assert shifted.rate_change == pytest.approx(shifted.recent_rate - shifted.reference_rate)

    # The gauge /metrics exports, and the alert rule evaluated on it by promtool.
    registry = CollectorRegistry()
    registry.register(drift_metrics.DriftCollector(settings, None))
    exported = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(generate_latest(registry).decode())
                for s in family.samples}
    exported_psi = exported[("rerankq_score_drift_psi", (("model", MODEL),))]
    assert exported_psi == pytest.approx(shifted.psi)
    assert exported[("rerankq_score_drift_ks", (("model", MODEL),))] == pytest.approx(shifted.ks)
    assert ("rerankq_low_confidence_rate", (("model", MODEL), ("window", "recent"))) in exported
    assert alert_fires(steady.psi) is False
    assert alert_fires(exported_psi) is True

    # The API's /metrics and the dashboard overview show the same figures.
    from fastapi.testclient import TestClient

    from api.main import create_app

    api_settings = settings.model_copy(update={"auth_enabled": False, "redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(api_settings)) as client:
        metrics = client.get("/metrics").text
        assert f'rerankq_score_drift_psi{{model="{MODEL}"}} {exported_psi}' in metrics
        page = client.get("/dashboard/overview").text
    assert page.count('data-testid="chart-drift"') == 1 and f"Score drift: {MODEL}" in page
    assert 'aria-label="Score drift of tiny-reranker"' in page and "PSI vs reference (capped at 1)" in page
    assert "low-confidence rate" in page and "reference rate" in page
    assert f"{shifted.reference_rate * 100:.1f}% in the reference" in page


def test_a_new_revision_starts_a_new_reference_and_pin_moves_it(settings):
    start = utcnow() - timedelta(hours=2)
    with session_scope(settings.database_url) as session:
        model_drift(session, settings, MODEL, "r1", now=start)
        first = get_reference(session, MODEL)
        assert (first.model_revision, first.pinned) == ("r1", False)
        model_drift(session, settings, MODEL, "r1", now=start + timedelta(minutes=5))
        assert get_reference(session, MODEL).window_start == start  # the same revision keeps its window
        later = start + timedelta(hours=1)
        model_drift(session, settings, MODEL, "r2", now=later)
        assert (get_reference(session, MODEL).model_revision, get_reference(session, MODEL).window_start) == ("r2", later)
    feed(settings, utcnow() - timedelta(minutes=5), [[0.9, 0.1]], revision="r2")
    with session_scope(settings.database_url) as session:
        pinned = pin_reference(session, MODEL, timedelta(hours=1))
        assert pinned.pinned and pinned.model_revision == "r2"
        assert pinned.window_end - pinned.window_start == timedelta(hours=1)


def test_psi_of_identical_samples_is_zero_and_of_disjoint_ones_large():
    values = [i / 100 for i in range(100)]
    assert psi(values, values) == pytest.approx(0.0)
    assert psi(values, [v + 2 for v in values]) > 5


def alert_fires(psi_value: float) -> bool:
    """Whether RerankqScoreDrift (monitoring/alerts.yml) fires after 40 minutes of a constant PSI, as
    Prometheus' own rule tester evaluates it (the rule must hold above 0.2 for 30 minutes)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: the Debian package prometheus provides it (apt-get install prometheus)")
    rule = next(r for g in yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"]
                for r in g["rules"] if r["alert"] == "RerankqScoreDrift")
    annotations = {"summary": f"Scores of {MODEL} drifted from the reference window (PSI {psi_value:.2f})",
                   "description": rule["annotations"]["description"].replace("{{ $labels.model }}", MODEL)}
    outcomes = {}
    for fires in (True, False):
        expected = [{"exp_labels": {"severity": "warning", "model": MODEL}, "exp_annotations": annotations}] \
            if fires else []
        test = {"rule_files": [str(ROOT / "monitoring" / "alerts.yml")], "evaluation_interval": "1m",
                "tests": [{"interval": "1m",
                           "input_series": [{"series": f'rerankq_score_drift_psi{{model="{MODEL}",job="rerankq-api",'
                                                       f'instance="api:8000"}}', "values": f"{psi_value}x60"}],
                           "alert_rule_test": [{"eval_time": "40m", "alertname": "RerankqScoreDrift",
                                                "exp_alerts": expected}]}]}
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "test.yml"
            path.write_text(yaml.safe_dump(test))
            outcomes[fires] = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                                             text=True).returncode == 0
    assert outcomes[True] != outcomes[False], outcomes  # exactly one expectation holds
    return outcomes[True]


def test_drift_pin_and_show_commands(settings):
    from typer.testing import CliRunner

    from commands.cli import app

    feed(settings, utcnow() - timedelta(minutes=10), [[0.9, 0.2, 0.1]], revision="r7")
    env = {"RERANKQ_DATABASE_URL": settings.database_url}
    pinned = CliRunner().invoke(app, ["drift", "pin", "--model", MODEL, "--hours", "2"], env=env)
    assert pinned.exit_code == 0, pinned.output
    assert "revision r7" in pinned.output
    with session_scope(settings.database_url) as session:
        reference = get_reference(session, MODEL)
        assert reference.pinned and reference.window_end - reference.window_start == timedelta(hours=2)
    shown = CliRunner().invoke(app, ["drift", "show"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"{MODEL}: PSI -, KS -; scores 3 recent vs 3 reference" in shown.output and "pinned" in shown.output
