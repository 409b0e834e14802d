"""rerankq: the public package for users' code (the client SDK and the CLI entry point)."""

__version__ = "0.1.0"
