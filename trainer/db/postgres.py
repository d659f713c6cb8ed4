"""PostgreSQL backend on an asyncpg pool.

Codecs make rows look like SQLite's: jsonb/json as Python objects, date as ISO text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from trainer import json_values
from trainer.db.base import Database, Row, Transaction
from trainer.errors import Unavailable


def _date_text(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json_values.dumps, decoder=json_values.loads, schema="pg_catalog")
    await conn.set_type_codec("date", encoder=_date_text, decoder=str, schema="pg_catalog", format="text")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing more than asyncpg always
    does (roll back an open transaction, drop listeners).

    asyncpg's default reset sends a fifth query, `SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`, on every release: a round trip and four statements of server work for
    each pool statement and each transaction, more than the statement itself for a small one.
    trainer leaves no session state to reset: it takes only transaction-scoped advisory locks,
    opens cursors only inside transactions, never LISTENs and never SETs a session variable.
    """


def _rowcount(status: str) -> int:
    """asyncpg returns a command tag such as 'UPDATE 3'; the last word is the count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresTransaction(Transaction):
    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self.conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self.conn.fetchrow(sql, *args)
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self.conn.execute(sql, *args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, list(args))

    async def lock(self, key: str) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    async def cursor(self, sql: str, *args: Any, batch: int = 500) -> AsyncIterator[Row]:
        async for record in self.conn.cursor(sql, *args, prefetch=batch):
            yield dict(record)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self.pool_size, init=_init_connection, reset=_keep_session
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable("database is not open")
        return self._pool

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self.pool.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self.pool.fetchrow(sql, *args)
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self.pool.execute(sql, *args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self.pool.executemany(sql, list(args))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PostgresTransaction(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Transaction]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield PostgresTransaction(conn)

    async def server_version(self) -> str:
        return "PostgreSQL " + str(await self.fetchval("SHOW server_version"))

    async def run_script(self, tx: Transaction, script: str) -> None:
        """asyncpg runs a multi-statement script as one simple query inside the open transaction."""
        assert isinstance(tx, PostgresTransaction)
        await tx.conn.execute(script)
