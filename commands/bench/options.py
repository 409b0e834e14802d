"""Checks of `rerankq bench`'s pipeline flags (--database-url, --peer, --peer-venv, --clients, --requests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from commands.bench.databases import THROWAWAY
from commands.bench.peer import PEERS
from commands.pg_cluster import missing_reason


def bench_pipeline_options(database_url: str, peer: Optional[str], peer_venv: Optional[Path], clients: int,
                           requests: Optional[int]) -> dict[str, Any]:
    """The BenchOptions fields for these flags; a usage error names the flag and what it takes."""
    if database_url == THROWAWAY and (reason := missing_reason()) is not None:
        raise typer.BadParameter(f"a throwaway PostgreSQL cluster needs what is missing here: {reason}",
                                 param_hint="--database-url")
    if peer is not None and peer not in PEERS:
        raise typer.BadParameter(f"{peer!r}: choose from {', '.join(PEERS)}", param_hint="--peer")
    if peer is not None and peer_venv is None:
        raise typer.BadParameter("--peer needs the virtual environment it is installed in", param_hint="--peer-venv")
    if peer_venv is not None and not (peer_venv / "bin" / "infinity_emb").exists():
        raise typer.BadParameter(f"{peer_venv / 'bin' / 'infinity_emb'} does not exist", param_hint="--peer-venv")
    return {"database_url": database_url, "peer": peer, "peer_venv": peer_venv.resolve() if peer_venv else None,
            "clients": clients, "requests": requests}
