"""The review loop over HTTP against real processes: review API validation, the dashboard's CSRF
and login rules, the JSONL export round trip (with disagreeing reviewers) and the CLI export."""

from __future__ import annotations

import json
import re

import httpx

from tests.review.conftest import seed_cases

DOCS = ["Paris is the capital of France.", "Berlin is in Germany.", "France is in Europe.", "Bananas are yellow."]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def test_case_keeps_everything_the_model_saw(review_client, tiny_qwen3):
    _tag, cases = seed_cases(review_client, [{"query": "capital of france", "documents": DOCS,
                                              "instruction": "Judge geography"}])
    case = review_client.get(f"/v1/reviews/{cases[0]['id']}").json()
    assert case["status"] == "open" and case["reason"] == "low_top_score"
    assert case["reasons"] == ["low_top_score", "small_margin"]  # the stack's pinned rules (see conftest)
    assert case["instruction"] == "Judge geography" and case["model"] == str(tiny_qwen3)
    assert case["model_revision"] and case["score_type"] and case["job_id"] and case["created_at"]
    documents = case["documents"]
    assert sorted(d["index"] for d in documents) == [0, 1, 2, 3]
    assert [d["rank"] for d in documents] == [1, 2, 3, 4]
    assert [d["score"] for d in documents] == sorted((d["score"] for d in documents), reverse=True)
    assert all(d["text"] == DOCS[d["index"]] for d in documents)
    assert case["top_score"] == documents[0]["score"]


def test_review_validation_names_the_field_and_limit(review_client):
    _tag, cases = seed_cases(review_client, [{"query": "validation", "documents": DOCS[:3]}])
    url = f"/v1/reviews/{cases[0]['id']}"
    bad = [
        ({"labels": {"3": 2}, "decision": "reviewed"}, "labels.3", 2),
        ({"labels": {"0": 4}, "decision": "reviewed"}, "labels.0", 3),
        ({"labels": {"0": -1}, "decision": "reviewed"}, "labels.0", 3),
        ({"labels": {"0": 0}, "best_index": 7, "decision": "reviewed"}, "best_index", 2),
        ({"labels": {"0": 0}, "best_index": 0, "decision": "reviewed"}, "best_index", 2),
        ({"labels": {}, "decision": "reviewed"}, "labels", None),
    ]
    for body, field, limit in bad:
        response = review_client.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["details"][0]
        assert detail["field"] == field and detail.get("limit") == limit, (body, detail)
        assert field in response.json()["message"]
    response = review_client.post(url, json={"labels": {"0": 1}, "decision": "maybe"})
    assert response.status_code == 422 and response.json()["details"][0]["field"] == "decision"
    assert review_client.get(url).json()["status"] == "open", "a rejected review must change nothing"
    assert review_client.post("/v1/reviews/999999", json={"decision": "dismissed"}).status_code == 404


def test_review_list_filters_sort_and_pages(review_client):
    tag, cases = seed_cases(review_client, [{"query": f"paging {i}", "documents": DOCS[: 2 + i % 3]}
                                            for i in range(5)])
    page1 = review_client.get("/v1/reviews", params={"q": tag, "page_size": 2, "sort": "oldest"}).json()
    page3 = review_client.get("/v1/reviews", params={"q": tag, "page_size": 2, "page": 3, "sort": "oldest"}).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1
    assert [c["id"] for c in page1["items"]] == [cases[0]["id"], cases[1]["id"]]
    lowest = review_client.get("/v1/reviews", params={"q": tag, "sort": "lowest"}).json()["items"]
    assert [c["top_score"] for c in lowest] == sorted(c["top_score"] for c in lowest)
    review_client.post(f"/v1/reviews/{cases[0]['id']}", json={"decision": "dismissed"})
    open_ids = {c["id"] for c in review_client.get("/v1/reviews", params={"q": tag}).json()["items"]}
    assert cases[0]["id"] not in open_ids and len(open_ids) == 4
    dismissed = review_client.get("/v1/reviews", params={"q": tag, "status": "dismissed"}).json()["items"]
    assert [c["id"] for c in dismissed] == [cases[0]["id"]]
    by_reason = review_client.get("/v1/reviews", params={"q": tag, "reason": "no_such_reason"}).json()
    assert by_reason["total"] == 0
    assert review_client.get("/v1/reviews", params={"page_size": 1000}).status_code == 422


def test_export_round_trips_what_reviewers_entered(review_client):
    _tag, cases = seed_cases(review_client, [{"query": "round trip", "documents": DOCS},
                                             {"query": "dismissed one", "documents": DOCS[:2]},
                                             {"query": "all relevant", "documents": DOCS[:2]},
                                             {"query": "none relevant", "documents": DOCS[:2]}])
    first, second, all_pos, all_neg = cases
    url = f"/v1/reviews/{first['id']}"
    ann = {"labels": {"0": 3, "1": 0, "2": 2, "3": 0}, "best_index": 0, "note": "clear", "decision": "reviewed",
           "reviewer": "ann"}
    ben = {"labels": {"0": 3, "1": 0, "2": 1}, "decision": "reviewed", "reviewer": "ben"}
    assert review_client.post(url, json=ann).status_code == 200
    body = review_client.post(url, json=ben).json()
    assert body["status"] == "reviewed" and {r["reviewer"] for r in body["reviews"]} == {"ann", "ben"}
    # Submitting again replaces that reviewer's review rather than adding one.
    assert len(review_client.post(url, json=ben).json()["reviews"]) == 2
    assert review_client.post(f"/v1/reviews/{second['id']}", json={"decision": "dismissed",
                                                                   "labels": {"0": 3}}).status_code == 200
    for case, grades in ((all_pos, {"0": 3, "1": 2}), (all_neg, {"0": 0, "1": 1})):
        saved = review_client.post(f"/v1/reviews/{case['id']}", json={"labels": grades, "decision": "reviewed"})
        assert saved.status_code == 200

    exported = {}
    for fmt in ("pairs", "graded", "groups"):
        response = review_client.get("/v1/reviews/export", params={"format": fmt})
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines()]  # every line parses
        exported[fmt] = [line for line in lines if line["case_id"] == first["id"]]
        assert not [line for line in lines if line["case_id"] == second["id"]], "dismissed cases are not labels"
        one_sided = {line["case_id"] for line in lines} & {all_pos["id"], all_neg["id"]}
        # A {query, pos, neg} group needs one of each; pairs and grades keep every labelled document.
        assert one_sided == (set() if fmt == "groups" else {all_pos["id"], all_neg["id"]}), fmt

    pairs = {line["doc_index"]: line for line in exported["pairs"]}
    assert set(pairs) == {0, 1, 2, 3}
    assert all(line["query"] == first["query"] and line["document"] == DOCS[i] for i, line in pairs.items())
    assert all(line["model"] == first["model"] and line["model_revision"] == first["model_revision"]
               for line in pairs.values())
    assert {i: line["label"] for i, line in pairs.items()} == {0: 1, 1: 0, 2: 0, 3: 0}
    assert pairs[0]["agreement"] == 1.0 and pairs[0]["n_reviewers"] == 2
    assert pairs[2]["agreement"] == 0.5 and pairs[2]["n_reviewers"] == 2  # ann: relevant (2), ben: partly (1)
    assert pairs[3]["agreement"] == 1.0 and pairs[3]["n_reviewers"] == 1  # only ann graded it
    graded = {line["doc_index"]: line["grade"] for line in exported["graded"]}
    assert graded == {0: 3, 1: 0, 2: 1, 3: 0}
    [group] = exported["groups"]
    assert group["pos"] == [DOCS[0]] and sorted(group["neg"]) == sorted([DOCS[1], DOCS[2], DOCS[3]])
    assert group["n_reviewers"] == 2 and group["agreement"] == 0.875  # mean of 1, 1, 0.5 and 1 over the documents
    bad = review_client.get("/v1/reviews/export", params={"format": "csv"})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"].endswith("format")


def test_cli_export_labels_writes_the_same_lines(review_client, review_stack, tmp_path):
    _tag, [case] = seed_cases(review_client, [{"query": "cli export", "documents": DOCS[:3]}])
    review_client.post(f"/v1/reviews/{case['id']}", json={"labels": {"0": 2, "1": 0, "2": 3}, "best_index": 2,
                                                          "decision": "reviewed"})
    target = tmp_path / "groups.jsonl"
    done = review_stack.cli("export-labels", "--format", "groups", "-o", str(target))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert f"wrote {len(lines)} groups lines" in done.stdout
    [mine] = [line for line in lines if line["case_id"] == case["id"]]
    assert mine["pos"] == [DOCS[2], DOCS[0]]  # the best answer first
    assert mine["neg"] == [DOCS[1]] and mine["query"] == case["query"]
    api_lines = review_client.get("/v1/reviews/export", params={"format": "groups"}).text.splitlines()
    assert [json.loads(line) for line in api_lines] == lines
    wrong = review_stack.cli("export-labels", "--format", "csv", "-o", str(tmp_path / "x"))
    assert wrong.returncode != 0 and "csv" in wrong.stderr and not (tmp_path / "x").exists()


def test_dashboard_post_without_a_valid_csrf_token_is_refused(review_client):
    _tag, [case] = seed_cases(review_client, [{"query": "csrf", "documents": DOCS[:2]}])
    page = review_client.get(f"/dashboard/cases/{case['id']}")
    assert page.status_code == 200
    token = csrf_of(page.text)
    form = {"grade_0": "3", "grade_1": "0", "decision": "reviewed"}
    url = f"/dashboard/cases/{case['id']}/review"
    assert review_client.post(url, data=form).status_code == 403
    assert review_client.post(url, data={**form, "csrf_token": token[:-2] + "00"}).status_code == 403
    with httpx.Client(base_url=str(review_client.base_url), timeout=30) as stranger:  # another session
        assert stranger.post(url, data={**form, "csrf_token": token}).status_code == 403
    assert review_client.get(f"/v1/reviews/{case['id']}").json()["status"] == "open"
    saved = review_client.post(url, data={**form, "csrf_token": token}, follow_redirects=False)
    assert saved.status_code == 303
    review = review_client.get(f"/v1/reviews/{case['id']}").json()
    assert review["status"] == "reviewed" and review["reviews"][0]["labels"] == {"0": 3, "1": 0}


def test_dashboard_needs_a_review_login_when_auth_is_on(secured_review_api, review_client, review_stack):
    base, keys = secured_review_api
    _tag, [case] = seed_cases(review_client, [{"query": "login", "documents": DOCS[:2]}])
    with httpx.Client(base_url=base, timeout=30) as browser:
        response = browser.get("/dashboard/queue")
        assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/login")
        assert browser.get(f"/v1/reviews/{case['id']}").status_code == 401
        login = browser.get("/dashboard/login")
        token = csrf_of(login.text)
        assert browser.post("/dashboard/login", data={"api_key": keys["rita"]}).status_code == 403  # no token
        refused = browser.post("/dashboard/login", data={"api_key": keys["sam"], "csrf_token": token})
        assert refused.status_code == 401 and "review scope" in refused.text
        wrong = browser.post("/dashboard/login", data={"api_key": "rrq_nope_nope", "csrf_token": token})
        assert wrong.status_code == 401
        ok = browser.post("/dashboard/login", data={"api_key": keys["rita"], "csrf_token": token,
                                                    "next": "https://evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/dashboard/queue"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert keys["rita"].split("_", 2)[2] not in cookie, "the key's secret must never be in the cookie"
        queue = browser.get("/dashboard/queue")
        assert queue.status_code == 200 and "rita" in queue.text
        # rita's key sees only its tenant's cases; the auth-off API's cases have no tenant.
        assert browser.get(f"/dashboard/cases/{case['id']}").status_code == 404
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {keys['sam']}"}) as sam:
        assert sam.get("/v1/reviews").status_code == 403
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {keys['ada']}"}) as ada:
        assert ada.get(f"/v1/reviews/{case['id']}").status_code == 200  # admins see every tenant
    # A key of its own to revoke: the secured API and its keys are shared by the whole session.
    made = review_stack.cli("keys", "create", "--name", "revoked-reviewer", "--scopes", "review", "--tenant", "reviewers")
    assert made.returncode == 0, made.stderr
    doomed = made.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=base, timeout=30) as browser:
        token = csrf_of(browser.get("/dashboard/login").text)
        browser.post("/dashboard/login", data={"api_key": doomed, "csrf_token": token})
        assert browser.get("/dashboard/queue").status_code == 200
        assert review_stack.cli("keys", "revoke", doomed.split("_")[1]).returncode == 0
        assert browser.get("/dashboard/queue").status_code == 303, "a revoked key ends its sessions at once"
