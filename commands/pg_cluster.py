"""A throwaway PostgreSQL cluster (tests, `rerankq soak`, `rerankq bench --database-url postgres`),
when the server binaries are installed.

initdb refuses to run as root, so as root the cluster is created and started as the
`postgres` user in a directory that user owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

from commands.redis_server import free_port


def postgres_bindir() -> Optional[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    bindir = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    return bindir if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() else None


def missing_reason() -> Optional[str]:
    if postgres_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl via pg_config --bindir) are not installed"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is not installed (pip install '.[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to switch to the postgres user"
    return None


class PostgresCluster:
    """initdb + pg_ctl on a free loopback port in a temporary directory. `start()`/`stop()`, or
    `with PostgresCluster() as cluster:` (the directory is removed when a start fails too)."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rerankq-pg-"))
        self.data = self.root / "data"

    def _run(self, *args: str) -> None:
        assert self.bindir is not None, "PostgresCluster needs the server binaries (missing_reason() is None)"
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> "PostgresCluster":
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.resume()
        return self

    def pause(self) -> None:
        """Stop the server (connections drop, new ones are refused) keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1",
                  "-l", str(self.root / "pg.log"), "-w", "start")

    def __enter__(self) -> "PostgresCluster":
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *_exc) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def pid(self) -> Optional[int]:
        """The postmaster's pid while the server runs (its backends are its children)."""
        return _postmaster_pid(self.data)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _postmaster_pid(data_dir: Path) -> Optional[int]:
    try:
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(database_url: str) -> Optional[int]:
    """The server's pid for a PostgreSQL database this process did not start, when it runs on this
    host and its data directory is readable here; None otherwise (a remote server, no permission)."""
    if not database_url.startswith("postgresql"):
        return None
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(database_url)
        try:
            with engine.connect() as conn:
                data_dir = conn.execute(text("SHOW data_directory")).scalar_one()
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001 - unreachable or not allowed: unknown
        return None
    return _postmaster_pid(Path(data_dir))
