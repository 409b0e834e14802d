"""The dashboard's review form with numbers `str.isdigit` takes but `int` cannot (or should not) read:
superscript and other non-ASCII digits, a grade of thousands of digits (issue #12). Each must
re-show the form with its error (422), never a 500, and save nothing."""

from __future__ import annotations

import pytest

from tests.review.conftest import seed_cases
from tests.review.test_review_api import DOCS, csrf_of


@pytest.mark.parametrize("field, value", [
    ("grade_0", "²"),
    ("grade_0", "٣"),  # Arabic-Indic three: int() reads it as 3
    ("grade_0", "9" * 5000),
    ("grade_0", "1" + "0" * 20),
    ("best", "²"),
    ("best", "7" * 5000),
])
def test_review_form_refuses_numbers_it_cannot_use(review_client, field, value):
    _tag, [case] = seed_cases(review_client, [{"query": "form digits", "documents": DOCS[:2]}])
    page = review_client.get(f"/dashboard/cases/{case['id']}")
    assert page.status_code == 200
    form = {"grade_0": "3", "grade_1": "0", "decision": "reviewed", "csrf_token": csrf_of(page.text), field: value}
    response = review_client.post(f"/dashboard/cases/{case['id']}/review", data=form, follow_redirects=False)
    assert response.status_code == 422, response.text[:500]
    assert "text/html" in response.headers["content-type"]
    assert ("labels.0" if field == "grade_0" else "best_index") in response.text
    assert review_client.get(f"/v1/reviews/{case['id']}").json()["status"] == "open"


def test_review_form_still_takes_plain_grades(review_client):
    _tag, [case] = seed_cases(review_client, [{"query": "form plain", "documents": DOCS[:2]}])
    page = review_client.get(f"/dashboard/cases/{case['id']}")
    form = {"grade_0": " 3 ", "grade_1": "0", "best": "0", "decision": "reviewed", "csrf_token": csrf_of(page.text)}
    saved = review_client.post(f"/dashboard/cases/{case['id']}/review", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text[:500]
    review = review_client.get(f"/v1/reviews/{case['id']}").json()
    assert review["status"] == "reviewed" and review["reviews"][0]["labels"] == {"0": 3, "1": 0}
