"""Database access: `open_database(url)` gives the backend the URL names."""

from __future__ import annotations

from trainer.db.base import Database, Dialect, Queries, Row, Transaction


def create_database(url: str, *, pool_size: int = 10) -> Database:
    """A (not yet opened) Database for a sqlite:/// or postgresql:// URL."""
    if url.startswith("sqlite:///"):
        from trainer.db.sqlite import SQLiteDatabase

        return SQLiteDatabase(url)
    if url.startswith(("postgresql://", "postgres://")):
        from trainer.db.postgres import PostgresDatabase

        return PostgresDatabase(url, pool_size=pool_size)
    raise ValueError("database_url must start with sqlite:/// or postgresql://")


__all__ = ["Database", "Dialect", "Queries", "Row", "Transaction", "create_database"]
