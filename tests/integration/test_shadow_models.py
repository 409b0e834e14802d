"""Shadow models on live traffic, `rerankq rescore`, and GET /v1/models/compare, against real
processes: redis-server, a worker for the served tiny Qwen3, a second worker serving a tiny
cross-encoder as `shadow-slow` with a deliberately slow forward pass (RERANKQ_FAULT_STEP_DELAY_S),
and two APIs on the same store, one with RERANKQ_SHADOW_MODELS and one without."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import httpx
import numpy
import pytest
import pytrec_eval
from scipy.stats import kendalltau
from sqlalchemy import select

from commands.redis_server import free_port
from store.db import session_scope
from store.tables import CaseRepeat, Job, LowConfidenceCase, ShadowLink
from tests.support.stack import make_stack
from tests.review.test_dashboard_browser import browser, page, shot  # noqa: F401 - fixtures
from tests.support.stack import Stack, wait_until
from core.confidence_rules import ConfidenceRules

SHADOW = "shadow-slow"
SHADOW_DELAY_S = 6.0  # every forward pass of the shadow model sleeps this long
N_REQUESTS = 6


@dataclass
class ShadowStack:
    stack: Stack
    plain_url: str  # an API without shadow models, for the unshadowed answers
    primary: str
    answers: list[dict] = field(default_factory=list)  # per request: body, plain, shadowed, latency, copy state
    grades: dict[str, dict[str, int]] = field(default_factory=dict)  # shadowed job id -> the labels reviewed


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory, tiny_qwen3, tiny_cross_encoder):
    # The workers flag every request (so each has a case to review); the APIs judge confidence with the
    # defaults, so the comparison's low-confidence rate is a figure that varies.
    stack = make_stack(tmp_path_factory.mktemp("shadow"), tiny_qwen3, RERANKQ_SYNC_TIMEOUT_S="60",
                       RERANKQ_LOW_TOP_SCORE="1.1")
    try:
        stack.start_worker("primary")
        stack.start_worker("shadow", RERANKQ_MODEL=str(tiny_cross_encoder), RERANKQ_MODEL_NAME=SHADOW,
                           RERANKQ_FAULT_STEP_DELAY_S=str(SHADOW_DELAY_S))
        stack.start_api(RERANKQ_SHADOW_MODELS=f"{SHADOW}:1", RERANKQ_LOW_TOP_SCORE="0.5")
        plain_port = free_port()
        plain = stack.extra_api(plain_port, RERANKQ_LOW_TOP_SCORE="0.5")
        result = ShadowStack(stack, f"http://127.0.0.1:{plain_port}", str(tiny_qwen3))
        send_traffic(result)
        review_three(result)
        yield result
        plain.stop()
    finally:
        stack.stop()


def copies_of(url: str, job_id: str) -> list[Job]:
    with session_scope(url) as session:
        jobs = session.scalars(select(Job).join(ShadowLink, ShadowLink.job_id == Job.id)
                               .where(ShadowLink.source_job_id == job_id).distinct())
        return [session.merge(j) for j in jobs]


def send_traffic(shadowed: ShadowStack) -> None:
    tag = uuid.uuid4().hex[:8]
    url = shadowed.stack.database_url
    with httpx.Client(base_url=shadowed.plain_url, timeout=60) as plain, shadowed.stack.client() as client:
        for i in range(N_REQUESTS):
            body = {"query": f"query {i} about topic {i % 3} {tag}",
                    "documents": [f"document {j} on topic {(i + j) % 4} {'word ' * (j + i)}" for j in range(4 + i % 3)]}
            started = time.monotonic()
            unshadowed = plain.post("/v1/rerank", json=body)
            plain_latency = time.monotonic() - started
            started = time.monotonic()
            answer = client.post("/v1/rerank", json=body)
            latency = time.monotonic() - started
            assert answer.status_code == 200 and unshadowed.status_code == 200, (answer.text, unshadowed.text)
            job_id = answer.json()["id"]
            copies = copies_of(url, job_id)  # right after the answer: the shadow work is not done yet
            shadowed.answers.append(dict(body=body, plain=unshadowed.json(), shadowed=answer.json(),
                                         latency=latency, plain_latency=plain_latency,
                                         copy_statuses=[c.status for c in copies]))
    for answer in shadowed.answers:
        wait_until(lambda: [c.status for c in copies_of(url, answer["shadowed"]["id"])] == ["succeeded"], 120,
                   "the shadow copy", interval_s=0.2)


def review_three(shadowed: ShadowStack) -> None:
    """Review the cases of the first three requests (made by the identical plain request before each, which
    the shadowed one repeats): their labels are the nDCG judgments."""
    with shadowed.stack.client() as client:
        for n, answer in enumerate(shadowed.answers[:3]):
            [case] = client.get("/v1/reviews", params={"q": answer["plain"]["id"], "status": "all"}).json()["items"]
            assert case["repeats"] == 2
            labels = {str(i): (i + n) % 4 for i in range(len(answer["body"]["documents"]))}
            saved = client.post(f"/v1/reviews/{case['id']}", json={"labels": labels, "decision": "reviewed"})
            assert saved.status_code == 200, saved.text
            shadowed.grades[answer["shadowed"]["id"]] = labels


def ranking(response: dict) -> list[int]:
    return [r["index"] for r in response["results"]]


def test_shadow_traffic_never_changes_the_answer_or_its_latency(shadowed):
    plain = sorted(a["plain_latency"] for a in shadowed.answers)
    shadow = sorted(a["latency"] for a in shadowed.answers)
    print(f"\nPOST /v1/rerank, {N_REQUESTS} requests: median {numpy.median(plain) * 1000:.0f} ms without shadow, "
          f"{numpy.median(shadow) * 1000:.0f} ms with a shadow model that takes {SHADOW_DELAY_S:g} s per pass "
          f"(max {plain[-1] * 1000:.0f} / {shadow[-1] * 1000:.0f} ms)")
    for answer in shadowed.answers:
        plain, shadow = answer["plain"], answer["shadowed"]
        assert ranking(shadow) == ranking(plain)
        for a, b in zip(shadow["results"], plain["results"]):
            assert a["relevance_score"] == pytest.approx(b["relevance_score"], abs=1e-5)
        assert shadow["meta"]["model"] == shadowed.primary and SHADOW not in str(shadow)
        assert len(shadow["results"]) == len(answer["body"]["documents"])
        # The client never waited for the shadow model: one of its forward passes alone takes longer.
        assert answer["latency"] < SHADOW_DELAY_S - 1, answer["latency"]
        assert "succeeded" not in answer["copy_statuses"], "the answer came after the shadow copy finished"
    assert all(a["copy_statuses"] for a in shadowed.answers[1:]), "a shadow copy is made for every request"


def test_shadow_results_are_stored_with_model_and_revision_and_raise_no_cases(shadowed):
    url = shadowed.stack.database_url
    with shadowed.stack.client() as client:
        for answer in shadowed.answers:
            [copy] = copies_of(url, answer["shadowed"]["id"])
            assert copy.kind == "shadow" and copy.model == SHADOW and copy.owner is None
            assert copy.queue == f"rerankq.{SHADOW}.shadow" and copy.callback_url is None
            view = client.get(f"/v1/jobs/{copy.id}").json()
            [result] = view["results"]
            assert result["meta"]["model"] == SHADOW and result["meta"]["model_revision"]
            assert sorted(r["index"] for r in result["results"]) == list(range(len(answer["body"]["documents"])))
            with session_scope(url) as session:
                assert session.scalar(select(LowConfidenceCase.id).where(LowConfidenceCase.job_id == copy.id)) is None
                # The plain API's identical request came first: it made the case, and this one is its repeat.
                case_id = session.scalar(select(LowConfidenceCase.id).where(
                    LowConfidenceCase.job_id == answer["plain"]["id"]))
                repeat_of = session.scalar(select(CaseRepeat.case_id).where(
                    CaseRepeat.job_id == answer["shadowed"]["id"]))
                assert case_id is not None and repeat_of == case_id


def scores_of(client: httpx.Client, job_id: str) -> tuple[list[float], float]:
    view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded", view
    results = view["results"][0]["results"]
    by_index = {r["index"]: r["relevance_score"] for r in results}
    created = view["created_at"].replace("Z", "+00:00")
    finished = view["finished_at"].replace("Z", "+00:00")
    from datetime import datetime

    return [by_index[i] for i in range(len(by_index))], (datetime.fromisoformat(finished)
                                                         - datetime.fromisoformat(created)).total_seconds()


def test_compare_endpoint_equals_figures_from_the_stored_results(shadowed):
    url = shadowed.stack.database_url
    primary_jobs = [a["shadowed"]["id"] for a in shadowed.answers] + [a["plain"]["id"] for a in shadowed.answers]
    grades = shadowed.grades
    with shadowed.stack.client() as client:
        response = client.get("/v1/models/compare", params={"baseline": shadowed.primary, "candidate": SHADOW})
        assert response.status_code == 200, response.text
        figures = response.json()

        # The same figures, computed here from what the service stored (its job views) with scipy and pytrec_eval.
        rules = ConfidenceRules(0.5, 0.05, 0.05, 0.7, 0.0)
        base, cand, agree, taus = [], [], [], []
        qrels, run_base, run_cand = {}, {}, {}
        for answer in shadowed.answers:
            job_id = answer["shadowed"]["id"]
            [copy] = copies_of(url, job_id)
            a, a_latency = scores_of(client, job_id)
            b, b_latency = scores_of(client, copy.id)
            base.append((a, a_latency))
            cand.append((b, b_latency))
            agree.append(float(numpy.argmax(a) == numpy.argmax(b)))
            taus.append(kendalltau(a, b).statistic)
            if job_id in grades:
                qrels[job_id] = grades[job_id]
                run_base[job_id] = {str(i): s for i, s in enumerate(a)}
                run_cand[job_id] = {str(i): s for i, s in enumerate(b)}
    assert not any(copies_of(url, j) for j in primary_jobs[N_REQUESTS:]), "the plain API made no shadow copies"

    def ndcg(run):
        evaluated = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
        return float(numpy.mean([v["ndcg_cut_10"] for v in evaluated.values()]))

    assert figures["n_requests"] == N_REQUESTS
    assert figures["top1_agreement"] == pytest.approx(numpy.mean(agree))
    assert figures["mean_kendall_tau"] == pytest.approx(numpy.mean(taus))
    assert figures["n_tau"] == N_REQUESTS
    for side, scored, run in (("baseline", base, run_base), ("candidate", cand, run_cand)):
        got = figures[side]
        assert got["n_reviewed"] == 3
        assert got["ndcg_at_10"] == pytest.approx(ndcg(run))
        assert got["low_confidence_rate"] == pytest.approx(numpy.mean([bool(rules.reasons(s)) for s, _ in scored]))
        assert got["p95_latency_s"] == pytest.approx(numpy.percentile([t for _, t in scored], 95, method="inverted_cdf"),
                                                   abs=1e-3)  # nearest rank, as every report
    assert figures["candidate"]["model"] == SHADOW and figures["baseline"]["revisions"]
    # The shadow model was slow and it shows; the client-facing model was not.
    assert figures["candidate"]["p95_latency_s"] > SHADOW_DELAY_S > figures["baseline"]["p95_latency_s"]

    with shadowed.stack.client() as client:
        missing = client.get("/v1/models/compare", params={"baseline": shadowed.primary})
        assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "query.candidate"
        nobody = client.get("/v1/models/compare", params={"baseline": "no-such-model", "candidate": SHADOW})
        assert nobody.status_code == 200 and nobody.json()["n_requests"] == 0


def test_rescore_sends_reviewed_cases_to_a_model_once(shadowed):
    stack = shadowed.stack
    done = stack.cli("rescore", "--model", SHADOW, "--cases", "reviewed", "--wait", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rescoring 3 cases" in done.stdout and "3 succeeded" not in done.stdout  # one job carries all three
    again = stack.cli("rescore", "--model", SHADOW, "--cases", "reviewed")
    assert again.returncode == 0 and "rescoring 0 cases" in again.stdout, again.stdout + again.stderr
    with session_scope(stack.database_url) as session:
        reviewed = set(session.execute(select(LowConfidenceCase.job_id, LowConfidenceCase.request_idx)
                                       .where(LowConfidenceCase.status == "reviewed")).all())
        rescored = session.execute(select(ShadowLink.source_job_id, ShadowLink.source_request_idx, Job.status,
                                          Job.kind, Job.model).join(Job, Job.id == ShadowLink.job_id)
                                   .where(ShadowLink.purpose == "rescore")).all()
    assert {(j, r) for j, r, *_ in rescored} == reviewed and len(rescored) == 3
    assert {(status, kind, model) for *_, status, kind, model in rescored} == {("succeeded", "rescore", SHADOW)}
    bad = stack.cli("rescore", "--model", SHADOW, "--cases", "some")
    assert bad.returncode != 0 and "--cases" in bad.stdout + bad.stderr


@pytest.mark.browser
def test_models_page_shows_the_comparison_with_charts_and_links_to_review(shadowed, page):  # noqa: F811
    base = shadowed.stack.base_url
    with shadowed.stack.client() as client:
        figures = client.get("/v1/models/compare", params={"baseline": shadowed.primary, "candidate": SHADOW}).json()
    page.goto(f"{base}/dashboard/queue")
    page.get_by_test_id("nav-models").click()
    page.wait_for_url("**/dashboard/models")
    # Defaults: the served model against the configured shadow model.
    assert page.get_by_test_id("baseline").input_value() == shadowed.primary
    assert page.get_by_test_id("candidate").input_value() == SHADOW
    assert page.get_by_test_id("stat-requests").locator(".stat-value").inner_text() == str(figures["n_requests"])
    agreement = page.get_by_test_id("stat-agreement").locator(".stat-value").inner_text()
    assert agreement == f"{figures['top1_agreement'] * 100:.1f}%"
    for role in ("baseline", "candidate"):
        assert page.get_by_test_id(f"ndcg-{role}").inner_text().startswith(f"{figures[role]['ndcg_at_10']:.3f}")
    for chart in ("ndcg", "agreement"):  # both have data: each draws its points, not the placeholder
        figure = page.get_by_test_id(f"chart-{chart}")
        assert figure.locator(".chart-empty").count() == 0 and figure.locator("circle.dot").count() >= 1, chart
    legend = page.get_by_test_id("chart-ndcg").locator("text.legend").all_text_contents()
    assert len(legend) == 2 and all(" @ " in name for name in legend), legend  # one line per model revision
    rows = page.get_by_test_id("disagreement-row")
    assert 1 <= rows.count() <= min(10, figures["n_requests"])  # rescored requests count too, once run
    shot(page, "models")
    # Each disagreeing request is one click away from review: its case (made by the identical plain request).
    page.get_by_test_id("review-link").first.click()
    page.wait_for_url("**/dashboard/cases/*")
    assert page.get_by_test_id("query").inner_text().startswith("query ")
    shot(page, "models-to-case")
