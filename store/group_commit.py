"""Group commit: one store transaction for every write of one kind that arrives together.

A worker's task threads claim their chunks as messages arrive and save them when the batcher's
forward pass resolves their futures, so the saves of one forward pass arrive within microseconds
of each other; an API process's request threads create jobs as concurrent requests arrive. One
committer thread per process and database takes everything queued, runs each kind of write (chunk
claims, chunk saves, new jobs) in one transaction (store/chunk_batch.py, store/jobs.py), and
hands each caller its own result. On SQLite this also turns many threads polling for the single
write lock (the busy handler sleeps in growing steps) into one writer per process. While a
transaction runs, the next group gathers behind it: nobody waits for company on an idle system.

Groups of different kinds that arrive together may share one transaction when each was submitted
with `share_transaction=True`: the API's new jobs and the published marks of the jobs before them
are one commit, not two. (The worker's claims and saves stay apart: they lock chunk and job rows
that another worker process may lock in the other order.)

If a group's transaction fails, each of its items is retried alone in its own transaction, so
one bad item (or a database error) reaches only the thread it belongs to, exactly as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from sqlalchemy.orm import Session

from store.db import session_scope
from store.packed_scores import forget_meta_ids

log = logging.getLogger(__name__)

# (session, the items of one group) -> one result per item, in order.
GroupAction = Callable[[Session, Sequence[Any]], list[Any]]
# (the payloads, the results) of a group once its transaction has committed, on the committer thread,
# before any caller is answered: where the API publishes the jobs a group stored, one message for many.
AfterCommit = Callable[[Sequence[Any], list[Any]], None]


@dataclass
class _Item:
    action: GroupAction
    payload: Any
    future: Future
    after: Optional[AfterCommit] = None
    shares: bool = False  # may share a transaction with other groups that share


class GroupCommitter:
    """One thread that runs grouped store actions; `run` blocks the caller until its item is done."""

    def __init__(self, database_url: str, max_group: int = 256) -> None:
        self.database_url = database_url
        self.max_group = max_group
        self.groups = 0  # groups committed, for tests and metrics
        self.items = 0
        self.transactions = 0
        self._queue: "queue.SimpleQueue[_Item]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, action: GroupAction, payload: Any, after: Optional[AfterCommit] = None,
            share_transaction: bool = False) -> Any:
        """Block until the item's transaction has committed (and `after` has run); its result, or its
        exception. Items group by (action, after): give both as module-level functions."""
        return self.submit(action, payload, after, share_transaction).result()

    def submit(self, action: GroupAction, payload: Any, after: Optional[AfterCommit] = None,
               share_transaction: bool = False) -> Future:
        """Queue the item and return at once: for writes nobody needs to wait for."""
        item = _Item(action, payload, Future(), after, share_transaction)
        self._ensure_thread()
        self._queue.put(item)
        return item.future

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="rerankq-group-commit", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.max_group:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            by_action: dict[tuple[GroupAction, Optional[AfterCommit], bool], list[_Item]] = {}
            for item in items:
                by_action.setdefault((item.action, item.after, item.shares), []).append(item)
            shared = [group for (_action, _after, shares), group in by_action.items() if shares]
            if shared:
                self._run(shared)
            for (_action, _after, shares), group in by_action.items():
                if not shares:
                    self._run([group])

    def _run(self, groups: list[list[_Item]]) -> None:
        """The groups in one transaction. If it fails: each group alone, then each item alone, so an
        error (a bad item, the database) reaches only the callers it belongs to."""
        try:
            with session_scope(self.database_url) as session:
                results = [group[0].action(session, [item.payload for item in group]) for group in groups]
            self.transactions += 1
        except BaseException as error:  # noqa: BLE001 - every item gets its own outcome below
            forget_meta_ids()
            if len(groups) > 1:
                log.info("%d groups of store writes failed together (%s); running them apart", len(groups), error)
                for group in groups:
                    self._run([group])
            elif len(groups[0]) > 1:
                log.info("group of %d store writes failed (%s); running them one by one", len(groups[0]), error)
                for item in groups[0]:
                    self._run([[item]])
            else:
                groups[0][0].future.set_exception(error)
            return
        for group, group_results in zip(groups, results):
            self._committed(group, group_results)

    def _committed(self, group: list[_Item], results: list[Any]) -> None:
        self.groups += 1
        self.items += len(group)
        after = group[0].after
        if after is not None:
            try:
                after([item.payload for item in group], results)
            except Exception as error:  # noqa: BLE001 - the group is committed: its callers get their results
                log.warning("after committing a group of %d store writes: %s", len(group), error)
        for item, result in zip(group, results):
            item.future.set_result(result)


_committers: dict[str, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer(url: str) -> GroupCommitter:
    """The one committer of this process for a database."""
    with _committers_lock:
        found = _committers.get(url)
        if found is None:
            found = _committers[url] = GroupCommitter(url)
        return found
