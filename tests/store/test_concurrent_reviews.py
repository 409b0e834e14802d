"""Two reviews of one case saved at the same moment on PostgreSQL: the case status is computed under a
row lock, so a "reviewed" is never overwritten by a concurrent "dismissed" (which would drop the
labels from the export)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from store.db import get_sessionmaker, session_scope
from store.label_export import iter_export
from store.reviews import get_case, save_review
from store.tables import LowConfidenceCase
from tests.store.test_reviews import add_case
from tests.support.stack import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture()
def pg_url(postgres_cluster):
    import uuid

    from store.migrate import upgrade

    url = postgres_cluster.create_database(f"t_{uuid.uuid4().hex[:12]}")
    upgrade(url)
    return url


def waiting_on_a_lock(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND datname = current_database()"))


def review(session, case_id: int, who: str, decision: str) -> None:
    case = get_case(session, case_id)
    save_review(session, case, reviewer=who, reviewer_name=who, labels={0: 3, 1: 0} if decision == "reviewed" else {},
                best_index=None, note=None, decision=decision)


@pytest.mark.parametrize("first, second", [("reviewed", "dismissed"), ("dismissed", "reviewed")])
def test_concurrent_reviews_keep_reviewed(pg_url, first, second):
    case_id = add_case(pg_url, "concurrent reviewers", [0.4, 0.3])
    holding = get_sessionmaker(pg_url)()  # the first reviewer's transaction, still open
    review(holding, case_id, "first", first)
    errors: list[BaseException] = []

    def second_reviewer():
        try:
            with session_scope(pg_url) as session:
                review(session, case_id, "second", second)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=second_reviewer)
    thread.start()
    # The second save is under way and waits for the first transaction (the case row it must lock).
    wait_until(lambda: waiting_on_a_lock(pg_url), 20, "the second review to wait for the first")
    holding.commit()
    holding.close()
    thread.join(30)
    assert not thread.is_alive() and not errors, errors
    with session_scope(pg_url) as session:
        assert session.get(LowConfidenceCase, case_id).status == "reviewed"
        lines = list(iter_export(session, "graded"))
    assert any(line["case_id"] == case_id for line in lines), "the reviewed labels must be exported"
