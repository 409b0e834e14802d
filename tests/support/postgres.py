"""The throwaway PostgreSQL cluster the store tests use (it lives in commands/, shared with the soak)."""

from commands.pg_cluster import PostgresCluster, missing_reason, postgres_bindir

__all__ = ["PostgresCluster", "missing_reason", "postgres_bindir"]
