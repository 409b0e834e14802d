"""The label export reads keyset pages, each in its own short transaction: a slow download (a
client reading one line at a time) holds no transaction and no connection open between pages."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from store import label_export
from store.db import get_engine, normalize_url, session_scope
from store.label_export import iter_export, iter_jsonl
from store.reviews import get_case, save_review
from tests.store.test_reviews import add_case

CASES = 12
PAGE = 5


def seed_reviewed(url: str) -> list[int]:
    ids = []
    for i in range(CASES):
        case_id = add_case(url, f"export page {i}", [0.1, 0.4, 0.2])
        with session_scope(url) as session:
            save_review(session, get_case(session, case_id), reviewer="r", reviewer_name="r",
                        labels={0: 3, 1: 0, 2: 1}, best_index=0, note=None, decision="reviewed")
        ids.append(case_id)
    return ids


def open_transactions(url: str) -> int:
    """Sessions of this database that hold a transaction open (PostgreSQL; SQLite has no server to ask)."""
    if not url.startswith("postgres"):
        return 0
    probe = create_engine(normalize_url(url))
    try:
        with probe.connect() as connection:
            return connection.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'")).scalar()
    finally:
        probe.dispose()


def test_a_slow_export_holds_no_transaction_between_lines(database_url, monkeypatch):
    monkeypatch.setattr(label_export, "BATCH", PAGE)
    ids = seed_reviewed(database_url)
    pool = get_engine(database_url).pool
    lines, held, in_transaction = [], [], []
    for line in iter_jsonl(database_url, "pairs"):  # the client reads a line, then stalls
        lines.append(json.loads(line))
        held.append(pool.checkedout())
        in_transaction.append(open_transactions(database_url))
    assert held == [0] * len(lines), "a connection stayed checked out while the client read"
    assert in_transaction == [0] * len(lines), "a transaction stayed open while the client read"
    assert [line["case_id"] for line in lines] == [case_id for case_id in ids for _doc in range(3)]
    with session_scope(database_url) as session:
        assert lines == list(iter_export(session, "pairs"))  # pages add up to the one-session export
