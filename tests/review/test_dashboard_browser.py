"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by PyPI `playwright`)
against real API and worker processes. Screenshots of every page go to tests/artifacts/."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.review.conftest import restamp_case, seed_cases

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("browser tests need Debian's chromium: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need PyPI playwright: pip install -e '.[dev]' (never `playwright install`)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def job_order(client: httpx.Client, case: dict) -> list[int]:
    """Document indexes best first, from the job's own scores (ties by submission order, as the API ranks)."""
    job = client.get(f"/v1/jobs/{case['job_id']}").json()
    scores = {r["index"]: r["relevance_score"] for r in job["results"][case["request_idx"]]["results"]}
    return sorted(scores, key=lambda i: (-scores[i], i))


def queue_queries(page) -> list[str]:
    return page.get_by_test_id("case-row").locator(".case-link").all_inner_texts()


def test_review_a_case_end_to_end(page, review_stack, review_client, tmp_path):
    base = review_stack.base_url
    tag, cases = seed_cases(review_client, [
        {"query": "which city is the capital of France", "instruction": "Judge geography facts",
         "documents": ["Paris is the capital and largest city of France.", "Lyon is known for its food.",
                       "The Eiffel Tower is in Paris.\nIt was built in 1889."]},
        {"query": "what does this page do", "documents": [f"{SCRIPT} a page that tries to run code",
                                                           "A harmless plain document."]},
        {"query": "how do vaccines work",
         "documents": ["Vaccines train the immune system to recognise a pathogen.", "Vacuum cleaners use suction."]},
        {"query": "one document only", "documents": ["A lone document has no margin to be small."]},
        {"query": "scored by another model", "documents": ["Moved to another model below.", "Second."]},
        {"query": "flagged long ago", "documents": ["Moved back in time below.", "Second."]},
    ])
    first, scripted, third, single, other_model, old = cases
    assert single["reasons"] == ["low_top_score"]
    assert all(c["reasons"] == ["low_top_score", "small_margin"] for c in cases if c is not single)
    restamp_case(review_stack.database_url, other_model["id"], model="acme/other-reranker")
    today = datetime.now(timezone.utc).date()
    restamp_case(review_stack.database_url, old["id"], created_at=datetime.now(timezone.utc) - timedelta(days=10))

    # Each filter drops exactly the case it should: reason, then model, then the date range.
    page.goto(f"{base}/dashboard/queue")
    page.get_by_test_id("filter-q").fill(tag)
    page.get_by_test_id("filter-sort").select_option("oldest")
    page.get_by_test_id("apply-filters").click()
    assert queue_queries(page) == [c["query"] for c in (old, first, scripted, third, single, other_model)]
    page.get_by_test_id("filter-reason").select_option("small_margin")
    page.get_by_test_id("apply-filters").click()
    assert queue_queries(page) == [c["query"] for c in (old, first, scripted, third, other_model)]
    page.get_by_test_id("filter-model").select_option(first["model"])
    page.get_by_test_id("apply-filters").click()
    assert queue_queries(page) == [c["query"] for c in (old, first, scripted, third)]
    page.get_by_test_id("filter-since").fill((today - timedelta(days=1)).isoformat())
    page.get_by_test_id("filter-until").fill((today + timedelta(days=1)).isoformat())
    page.get_by_test_id("apply-filters").click()
    assert queue_queries(page) == [c["query"] for c in (first, scripted, third)]
    shot(page, "queue")

    page.keyboard.press("j")  # select the first row from the keyboard, open it with Enter
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/dashboard/cases/{first['id']}?*")
    assert page.get_by_test_id("query").inner_text() == first["query"]
    assert page.get_by_test_id("instruction").inner_text() == "Judge geography facts"
    order = [int(i) for i in page.get_by_test_id("doc").evaluate_all("els => els.map(e => e.dataset.index)")]
    assert order == job_order(review_client, first), "documents must be shown best score first"
    assert page.locator("li.doc .rank").all_inner_texts() == ["#1", "#2", "#3"]
    page.keyboard.press("3")  # the model's first document: perfect (then the next one is current)
    page.keyboard.press("n")  # the second: not relevant
    page.locator(f"label[for='g{order[2]}-2']").click()  # the third: relevant, by mouse
    page.locator(f"label[for='best-{order[0]}']").click()
    page.get_by_test_id("note").fill("Paris answers it; the tower is only related.")
    assert page.locator("#graded-count").inner_text() == "3"
    shot(page, "case")
    page.get_by_test_id("submit-review").click()

    page.wait_for_url(f"**/dashboard/cases/{scripted['id']}?*")  # the next case opens
    assert f"Review of case #{first['id']} saved" in page.get_by_test_id("flash").inner_text()
    saved = review_client.get(f"/v1/reviews/{first['id']}").json()
    assert saved["status"] == "reviewed"
    [review] = saved["reviews"]
    assert review["labels"] == {str(order[0]): 3, str(order[1]): 0, str(order[2]): 2}
    assert review["best_index"] == order[0] and review["note"] == "Paris answers it; the tower is only related."

    # A document holding a script tag is shown as text and never runs.
    texts = page.get_by_test_id("doc-text").all_inner_texts()
    assert f"{SCRIPT} a page that tries to run code" in texts
    assert page.locator("li.doc script").count() == 0 and page.dialogs == []
    shot(page, "case-with-script-text")
    page.keyboard.press("x")  # dismiss from the keyboard; the next case opens
    page.wait_for_url(f"**/dashboard/cases/{third['id']}?*")
    assert review_client.get(f"/v1/reviews/{scripted['id']}").json()["status"] == "dismissed"

    page.keyboard.press("y")  # relevant, then not relevant, then a note saved with Ctrl+Enter
    page.keyboard.press("n")
    page.keyboard.press("e")
    page.keyboard.type("Saved from the note.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/dashboard/queue?*")  # nothing open is left under these filters (single, old: excluded)
    assert page.get_by_test_id("empty-queue").is_visible()
    [third_review] = review_client.get(f"/v1/reviews/{third['id']}").json()["reviews"]
    third_order = job_order(review_client, third)
    assert third_review["labels"] == {str(third_order[0]): 2, str(third_order[1]): 0}
    assert third_review["note"] == "Saved from the note."
    for left_open in (single, other_model, old):
        assert review_client.get(f"/v1/reviews/{left_open['id']}").json()["status"] == "open"

    page.get_by_test_id("tab-reviewed").click()
    assert page.get_by_test_id("case-row").count() == 2
    page.get_by_test_id("export-menu").click()
    with page.expect_download() as download:
        page.get_by_test_id("export-pairs").click()
    target = tmp_path / "pairs.jsonl"
    download.value.save_as(target)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    mine = {line["doc_index"]: line["label"] for line in lines if line["case_id"] == first["id"]}
    assert mine == {order[0]: 1, order[1]: 0, order[2]: 1}
    assert not [line for line in lines if line["case_id"] == scripted["id"]]
    assert page.dialogs == []


def test_overview_jobs_and_playground_pages(page, review_stack, review_client):
    base = review_stack.base_url
    _tag, [case] = seed_cases(review_client, [{"query": "overview seed", "documents": ["one doc", "two docs"]}])
    page.goto(f"{base}/dashboard/overview")
    # Every chart has data by now, so each must draw its marks, not the "No data" placeholder.
    marks = {"scores": "rect.bar", "rate": "circle.dot", "backlog": "rect.bar", "reasons": "rect.bar",
             "jobs": "rect.bar", "latency": "circle.dot"}
    for chart, mark in marks.items():
        figure = page.get_by_test_id(f"chart-{chart}")
        assert figure.locator("svg").count() == 1 and figure.locator(".chart-empty").count() == 0, chart
        assert figure.locator(mark).count() >= 1, chart
    for chart in ("rate", "latency"):  # points are big enough to see, a point with no neighbour more so
        for dot in page.get_by_test_id(f"chart-{chart}").locator("circle.dot").all():
            box, lone = dot.bounding_box(), "lone" in dot.get_attribute("class")
            assert box and min(box["width"], box["height"]) >= (9 if lone else 5), (chart, lone, box)
    assert page.get_by_test_id("chart-latency").locator("circle.dot").count() >= 2  # p50 and p95
    rate = float(page.get_by_test_id("stat-rate").locator(".stat-value").inner_text().rstrip("%"))
    assert 0 < rate <= 100
    assert int(page.get_by_test_id("stat-open").locator(".stat-value").inner_text()) >= 1
    shot(page, "overview")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "Ctrl Enter Save, from the note" in " ".join(page.locator("#help").inner_text().split())
    page.screenshot(path=str(ARTIFACTS / "shortcuts.png"))
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.keyboard.press("g")
    page.keyboard.press("j")  # g j: to the jobs page
    page.wait_for_url("**/dashboard/jobs")

    shot(page, "jobs")
    page.get_by_test_id("job-id").fill(case["job_id"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/dashboard/jobs/{case['job_id']}")
    assert page.get_by_test_id("job-progress").inner_text().startswith("2 of 2 pairs scored")
    documents = ["one doc", "two docs"]
    assert page.get_by_test_id("ranked-doc").all_inner_texts() == [documents[i] for i in job_order(review_client, case)]
    shot(page, "job")

    page.goto(f"{base}/dashboard/playground")
    page.get_by_test_id("pg-query").fill("Where is the Louvre?")
    page.get_by_test_id("pg-instruction").fill("Judge museum facts")
    page.get_by_test_id("pg-documents").fill(f"The Louvre is in Paris.\nBananas are yellow.\n{SCRIPT}")
    page.get_by_test_id("pg-rank").click()
    page.wait_for_url("**/dashboard/playground?job=*")
    ranked = page.get_by_test_id("ranked-doc").all_inner_texts()
    assert sorted(ranked) == sorted(["The Louvre is in Paris.", "Bananas are yellow.", SCRIPT])
    job_id = page.url.split("job=")[1]
    job = review_client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    by_index = {r["index"]: r["relevance_score"] for r in job["results"][0]["results"]}
    expected = ["The Louvre is in Paris.", "Bananas are yellow.", SCRIPT]
    assert ranked == [expected[i] for i in sorted(by_index, key=lambda i: (-by_index[i], i))]
    assert page.dialogs == []
    shot(page, "playground")


def test_login_with_access_control_on(page, secured_review_api):
    base, keys = secured_review_api
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {keys['rita']}"}) as rita:
        _tag, [case] = seed_cases(rita, [{"query": "tenant case", "documents": ["a", "b"]}])
    page.goto(f"{base}/dashboard/queue")
    page.wait_for_url("**/dashboard/login?*")
    page.get_by_test_id("api-key").fill(keys["sam"])  # no review scope
    page.get_by_test_id("login").click()
    assert "lacks the review scope" in page.get_by_test_id("login-error").inner_text()
    shot(page, "login")
    page.get_by_test_id("api-key").fill(keys["rita"])
    page.get_by_test_id("login").click()
    page.wait_for_url("**/dashboard/queue")
    assert page.locator(".who-name").inner_text() == "rita"
    assert case["query"] in page.get_by_test_id("cases").inner_text()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/dashboard/login")
    page.goto(f"{base}/dashboard/cases/{case['id']}")
    page.wait_for_url("**/dashboard/login?*")
