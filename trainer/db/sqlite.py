"""SQLite backend: one serialized writer connection and a small pool of reader connections.

WAL mode lets readers run beside the writer; every write goes through one connection behind an
asyncio lock, and BEGIN IMMEDIATE plus busy_timeout serialize writers of other processes
(`trainer worker` beside `trainer serve`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

from trainer.db.base import Database, Row, Transaction
from trainer.errors import Unavailable

# Declared column types "JSON" and "BOOLEAN" come back as Python values (PARSE_DECLTYPES).
sqlite3.register_converter("JSON", json.loads)
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))

_PLACEHOLDER = re.compile(r"\$(\d+)")
BUSY_TIMEOUT_MS = 10_000


@lru_cache(maxsize=1024)
def to_sqlite(sql: str) -> str:
    """$1-style placeholders -> SQLite's ?1 form (cached: statements are few and reused)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _param(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    return value


def _params(args: Sequence[Any]) -> list[Any]:
    return [_param(a) for a in args]


def path_from_url(url: str) -> str:
    """sqlite:///relative/path, sqlite:////abs/path, or sqlite:///:memory:."""
    path = url.removeprefix("sqlite:///")
    if not path:
        raise ValueError("sqlite URL has no path")
    return path


async def _run(conn: aiosqlite.Connection, sql: str) -> None:
    """Run a control statement to completion and finalize it (a half-stepped PRAGMA keeps locks)."""
    async with conn.execute(sql) as cur:
        await cur.fetchall()


class _Conn:
    """Statement helpers shared by the writer transaction and the readers."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self.conn.execute(to_sqlite(sql), _params(args)) as cur:
            rows = await cur.fetchall()
            if not rows:
                return []
            names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.conn.execute(to_sqlite(sql), _params(args)) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(to_sqlite(sql), [_params(a) for a in args])


class SQLiteTransaction(Transaction):
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._c = _Conn(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._c.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._c.execute(sql, *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._c.executemany(sql, args)

    async def lock(self, key: str) -> None:
        """Nothing to do: the transaction already holds SQLite's only write lock."""

    async def cursor(self, sql: str, *args: Any, batch: int = 500) -> AsyncIterator[Row]:
        async with self._c.conn.execute(to_sqlite(sql), _params(args)) as cur:
            names = [d[0] for d in cur.description]
            while rows := await cur.fetchmany(batch):
                for row in rows:
                    yield dict(zip(names, row, strict=True))


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 4) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._readers_wanted = 1 if self.path == ":memory:" else readers
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._in_transaction = contextvars.ContextVar(f"sqlite-tx-{id(self)}", default=False)

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(
            self.path, isolation_level=None, detect_types=sqlite3.PARSE_DECLTYPES, timeout=BUSY_TIMEOUT_MS / 1000
        )
        await _run(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await _run(conn, "PRAGMA foreign_keys = ON")
        await _run(conn, "PRAGMA synchronous = NORMAL")
        return conn

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._connect()
            if self.path != ":memory:":
                await _run(self._writer, "PRAGMA journal_mode = WAL")
            for _ in range(self._readers_wanted if self.path != ":memory:" else 0):
                reader = await self._connect()
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
        except sqlite3.Error as exc:
            await self.close()
            raise Unavailable(f"cannot open SQLite database {self.path}: {exc}") from None

    async def close(self) -> None:
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise Unavailable("database is not open")
        return self._writer

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[aiosqlite.Connection]:
        if not self._all_readers:  # :memory: has a single connection
            async with self._write_lock:
                yield self.writer
            return
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        if _is_write(sql):
            async with self.transaction() as tx:
                return await tx.fetch(sql, *args)
        async with self._reader() as conn:
            return await _Conn(conn).fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._in_transaction.get():
            # The writer lock is not re-entrant: waiting for it here would hang forever.
            raise RuntimeError("write through the database inside its own open transaction: use the `tx` you hold")
        async with self._write_lock:
            conn = self.writer
            await _run(conn, "BEGIN IMMEDIATE")
            token = self._in_transaction.set(True)
            try:
                yield SQLiteTransaction(conn)
                await _run(conn, "COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await _run(conn, "ROLLBACK")
                raise
            finally:
                self._in_transaction.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Transaction]:
        async with self._reader() as conn:
            await _run(conn, "BEGIN")
            try:
                yield SQLiteTransaction(conn)
            finally:
                await _run(conn, "ROLLBACK")

    async def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    async def run_script(self, tx: Transaction, script: str) -> None:
        """Run a multi-statement script inside `tx` (executescript would COMMIT first)."""
        for statement in split_statements(script):
            await tx.execute(statement)


def _is_write(sql: str) -> bool:
    head = sql.lstrip()[:7].upper()
    return not head.startswith(("SELECT", "WITH", "PRAGMA", "EXPLAIN"))


def split_statements(script: str) -> list[str]:
    """Split SQL into complete statements, keeping trigger bodies whole."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
        raise ValueError(f"incomplete SQL statement at end of script: {buf.strip()[:60]}")
    return statements
