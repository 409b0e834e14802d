"""Grafana dashboards and alert rules only query what the code exports, with labels it sets.

Each query is parsed by a real PromQL parser (promql-parser), so a typo in a metric name, a
label, a missing `_bucket` under histogram_quantile or a rate() over a gauge fails here
instead of drawing an empty panel in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.exported import TARGET_LABELS, exported_series

promql = pytest.importorskip("promql_parser", reason="needs promql-parser (pip install 'rerankq[dev]')")

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
PROMETHEUS_BUILTINS = {"up"}  # series Prometheus itself adds per target
RANGE_FUNCTIONS = {"rate", "irate", "increase"}


def walk(node, selectors: list, groupings: list, ranged: list, quantiles: list) -> None:
    """Collect vector selectors, aggregation labels, selectors under rate(), and histogram_quantile args."""
    if isinstance(node, promql.VectorSelector):
        selectors.append(node)
    elif isinstance(node, promql.MatrixSelector):
        walk(node.vector_selector, selectors, groupings, ranged, quantiles)
    elif isinstance(node, promql.AggregateExpr):
        if node.modifier is not None:
            groupings.extend(node.modifier.labels)
        walk(node.expr, selectors, groupings, ranged, quantiles)
        if node.param is not None:
            walk(node.param, selectors, groupings, ranged, quantiles)
    elif isinstance(node, promql.Call):
        inner: list = []
        for arg in node.args:
            walk(arg, inner, groupings, ranged, quantiles)
        selectors.extend(inner)
        if node.func.name in RANGE_FUNCTIONS:
            ranged.extend(inner)
        if node.func.name == "histogram_quantile":
            quantiles.append(inner)
    elif isinstance(node, promql.BinaryExpr):
        if node.modifier is not None and node.modifier.matching is not None:
            groupings.extend(node.modifier.matching.labels)
        walk(node.lhs, selectors, groupings, ranged, quantiles)
        walk(node.rhs, selectors, groupings, ranged, quantiles)
    elif isinstance(node, (promql.ParenExpr, promql.UnaryExpr, promql.SubqueryExpr)):
        walk(node.expr, selectors, groupings, ranged, quantiles)


def check_query(expr: str, exported: dict, where: str) -> set[str]:
    """Problems are raised as assertion errors naming `where`; returns the series names queried."""
    parsed = promql.parse(expr.replace("$__rate_interval", "5m").replace("$__interval", "1m"))
    selectors: list = []
    groupings: list = []
    ranged: list = []
    quantiles: list = []
    walk(parsed, selectors, groupings, ranged, quantiles)
    assert selectors, f"{where}: queries no metric: {expr}"
    names = set()
    labels_in_query: set[str] = set(TARGET_LABELS)
    for selector in selectors:
        name = selector.name
        names.add(name)
        if name in PROMETHEUS_BUILTINS:
            labels_in_query |= {"job", "instance"}
            continue
        assert name in exported, f"{where}: '{name}' is not exported by the code (query: {expr})"
        series = exported[name]
        labels_in_query |= series.labels
        for matcher in selector.matchers.matchers:
            assert matcher.name in series.labels, (
                f"{where}: {name} has no label '{matcher.name}' (it has {sorted(series.labels)})")
    for label in groupings:
        assert label in labels_in_query, f"{where}: groups by '{label}', which no queried series has: {expr}"
    for selector in ranged:
        series = exported.get(selector.name)
        if series is not None:
            assert series.type in ("counter", "histogram", "summary"), (
                f"{where}: rate/increase over {selector.name}, a {series.type}: {expr}")
    for arguments in quantiles:
        assert any(s.name.endswith("_bucket") for s in arguments), (
            f"{where}: histogram_quantile needs a _bucket series: {expr}")
    return names


@pytest.fixture(scope="module")
def exported() -> dict:
    return exported_series()


def dashboard_targets(path: Path):
    dashboard = json.loads(path.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def test_there_is_a_dashboard():
    assert DASHBOARDS, "monitoring/grafana/dashboards/*.json is empty"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_uses_exported_metrics_and_labels(path, exported):
    queried: set[str] = set()
    count = 0
    for panel, target in dashboard_targets(path):
        queried |= check_query(target["expr"], exported, f"{path.name} panel '{panel['title']}'")
        count += 1
    assert count >= 10
    # The panels the issue asks for: throughput, latency, queue depth and wait, batch size,
    # padding efficiency, worker count, low-confidence rate, review backlog.
    wanted = {"rerankq_pairs_scored_total", "rerankq_http_request_duration_seconds_bucket", "rerankq_queue_depth",
              "rerankq_queue_wait_seconds_bucket", "rerankq_batch_pairs_bucket", "rerankq_batch_real_tokens_total",
              "rerankq_batch_padded_tokens_total", "rerankq_workers_ready", "rerankq_low_confidence_cases_total",
              "rerankq_scored_requests_total", "rerankq_review_backlog_cases"}
    assert wanted <= queried, f"no panel shows {sorted(wanted - queried)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_provisionable(path):
    """File provisioning resolves no `${DS_...}` inputs: every datasource is the provisioned uid."""
    text = path.read_text()
    assert "${DS_" not in text and "__inputs" not in text
    provisioned = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"] if d["type"] == "prometheus"}
    dashboard = json.loads(text)
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"panel '{panel['title']}' overflows the 24-column grid"
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_every_alert_queries_exported_metrics(exported):
    rules = alert_rules()
    for rule in rules:
        check_query(rule["expr"], exported, f"alert {rule['alert']}")
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    names = {rule["alert"] for rule in rules}
    assert len(names) == len(rules), "alert names repeat"
    # The alerts the issue asks for.
    assert {"RerankqNoReadyWorker", "RerankqUnackedAgeNearVisibilityTimeout", "RerankqHighErrorRatio",
            "RerankqHighLatencyP95", "RerankqReviewBacklogHigh"} <= names


def test_the_checker_catches_mistakes(exported):
    """The checks above would fail on the usual dashboard bugs."""
    mistakes = [
        "rate(rerankq_pairs_scored[5m])",  # counter without _total
        "histogram_quantile(0.95, rate(rerankq_inference_duration_seconds[5m]))",  # no _bucket
        'sum(rate(rerankq_http_requests_total{status_code="500"}[5m]))',  # wrong label
        "rate(rerankq_queue_depth[5m])",  # rate of a gauge
        "sum by (queue) (rerankq_workers_ready)",  # grouping by a label it lacks
    ]
    for expr in mistakes:
        with pytest.raises(AssertionError):
            check_query(expr, exported, "probe")


def test_prometheus_scrapes_what_compose_runs():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert rule_file in mounts and (ROOT / mounts[rule_file]).is_file(), rule_file
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: sd["port"] for job in jobs.values() for sd in job["dns_sd_configs"] for name in sd["names"]}
    assert targets["api"] == 8000
    worker_port = int(compose["services"]["worker"]["environment"]["RERANKQ_METRICS_PORT"])
    assert targets["worker"] == targets["worker-cpu"] == worker_port
    assert set(targets) <= set(compose["services"])
    assert {"rerankq-api"} <= set(jobs)  # the RerankqApiDown alert matches this job name
