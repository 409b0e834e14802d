"""A throwaway PostgreSQL cluster for `rerankq bench --database-url postgres`.

Production stores in PostgreSQL; the bench measures the system against it on this machine by
starting its own cluster (initdb, pg_ctl) in a temporary directory, one database per system
under test, and removing it at the end. initdb refuses to run as root, so as root the cluster
runs as the `postgres` user in a directory that user owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from core.redis_server import free_port

THROWAWAY = "postgres"  # the --database-url value that asks for a throwaway cluster


class PostgresUnavailable(RuntimeError):
    """What is missing to start a cluster here."""


def postgres_bindir() -> Optional[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    bindir = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


class ThrowawayPostgres:
    """initdb + pg_ctl start on a free loopback port; `create_database` gives each system its own."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise PostgresUnavailable("--database-url postgres needs the PostgreSQL server binaries "
                                      "(initdb and pg_ctl, found through pg_config --bindir)")
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root without runuser to start PostgreSQL as the postgres user")
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rerankq-bench-pg-"))
        self.data = self.root / "data"
        self.pid: Optional[int] = None

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def __enter__(self) -> "ThrowawayPostgres":
        try:
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            self._run("pg_ctl", "-D", str(self.data), "-o",
                      f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1",
                      "-l", str(self.root / "pg.log"), "-w", "start")
            self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except BaseException:
            self.__exit__()
            raise
        return self

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def __exit__(self, *_exc) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def postmaster_pid(database_url: str) -> Optional[int]:
    """The server's pid for a database this bench did not start, when it runs on this host
    (its CPU then counts as the database's); None when unknown."""
    if not database_url.startswith("postgresql"):
        return None
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(database_url)
        with engine.connect() as conn:
            data_dir = conn.execute(text("SHOW data_directory")).scalar()
        engine.dispose()
        return int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    except Exception:  # noqa: BLE001 - a remote server, or no permission: its CPU is not counted
        return None


class Databases:
    """Where each system under test stores: its own SQLite file (default), its own database in a
    throwaway cluster (`postgres`), or the URL given. `pid` is the database server's, when its
    CPU can be counted (None for SQLite: that cost is inside the API and worker)."""

    def __init__(self, choice: str, stack) -> None:
        self.choice = choice or ""
        self.cluster: Optional[ThrowawayPostgres] = None
        self.pid: Optional[int] = None
        if self.choice == THROWAWAY:
            self.cluster = stack.enter_context(ThrowawayPostgres())
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
