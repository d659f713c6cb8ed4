"""The one database interface trainer code talks to.

SQL is written once in PostgreSQL's placeholder style ($1, $2 ...); the SQLite backend rewrites it
to SQLite's numbered form (?1, ?2 ...). Rows come back as plain dicts on both backends, JSON
columns as Python objects, booleans as bool, dates as ISO strings and instants as integer
milliseconds, so code above this layer never branches on the dialect for ordinary queries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

Row = dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]


class Queries(ABC):
    """What can run a statement: the database itself (autocommit) or an open transaction."""

    dialect: Dialect

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; returns the number of rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))


class Transaction(Queries):
    """An open transaction: everything run through it commits or rolls back together."""

    @abstractmethod
    async def lock(self, key: str) -> None:
        """Serialize writers on `key` until this transaction ends (e.g. one user's sync stamps).

        PostgreSQL takes a transaction-scoped advisory lock; SQLite already has a single writer.
        """

    @abstractmethod
    def cursor(self, sql: str, *args: Any, batch: int = 500) -> AsyncIterator[Row]:
        """Stream rows without holding the whole result in memory."""


class Database(Queries):
    """A connection pool to one database."""

    url: str

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-write transaction (SQLite: BEGIN IMMEDIATE on the single writer)."""

    @abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only transaction that sees one consistent state of the database throughout."""

    @abstractmethod
    async def server_version(self) -> str: ...

    @abstractmethod
    async def run_script(self, tx: Transaction, script: str) -> None:
        """Run a multi-statement SQL script (a migration) inside an open transaction."""

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
