"""Where each system `rerankq bench` starts stores (`--database-url`).

Production stores in PostgreSQL; the bench measures the system against it on this machine by
starting its own throwaway cluster (commands/pg_cluster.py), one database per system under
test, removed at the end.
"""

from __future__ import annotations

import contextlib
from typing import Optional

from commands.pg_cluster import PostgresCluster, missing_reason, postmaster_pid

THROWAWAY = "postgres"  # the --database-url value that asks for a throwaway cluster


class PostgresUnavailable(RuntimeError):
    """What is missing to start a cluster here."""


class Databases:
    """Where each system under test stores: its own SQLite file (default), its own database in a
    throwaway cluster (`postgres`), or the URL given. `pid` is the database server's, when its
    CPU can be counted (None for SQLite: that cost is inside the API and worker)."""

    def __init__(self, choice: str, stack: contextlib.ExitStack) -> None:
        self.choice = choice or ""
        self.cluster: Optional[PostgresCluster] = None
        self.pid: Optional[int] = None
        if self.choice == THROWAWAY:
            reason = missing_reason()
            if reason is not None:
                raise PostgresUnavailable(f"--database-url postgres needs a local PostgreSQL cluster: {reason}")
            self.cluster = stack.enter_context(PostgresCluster())
            self.pid = self.cluster.pid
        elif self.choice:
            self.pid = postmaster_pid(self.choice)
        self.label = "sqlite" if not self.choice or self.choice.startswith("sqlite") else (
            "postgresql" if self.choice.startswith(("postgres", THROWAWAY)) else self.choice.split(":", 1)[0])
        self._made = 0

    def url_for(self, name: str) -> str:
        """A database for one system ('' means a SQLite file in that system's directory)."""
        if self.cluster is not None:
            self._made += 1
            return self.cluster.create_database(f"bench_{name}_{self._made}")
        return self.choice
