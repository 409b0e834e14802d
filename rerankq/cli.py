"""Console-script entry point for `rerankq` (the commands live in core.cli)."""

from core.cli import app


def main() -> None:
    app()
