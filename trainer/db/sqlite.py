"""SQLite backend: one serialized writer connection and a small pool of reader connections.

WAL mode lets readers run beside the writer; every write goes through one connection behind an
asyncio lock, and BEGIN IMMEDIATE plus busy_timeout serialize writers of other processes
(`trainer worker` beside `trainer serve`). Each connection lives on a thread of its own
(trainer/db/sqlite_thread.py) and a read is one trip to it: the statement runs, its rows are
fetched and named there. Writes run on the event loop's thread whenever the write lock is free
(see SQLiteTransaction) and go to the writer's thread only to wait for another process's lock.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from trainer import json_values
from trainer.db.base import Database, Row, Transaction
from trainer.db.sqlite_checkpoint import WalCheckpointer
from trainer.db.sqlite_thread import ThreadConnection
from trainer.errors import Unavailable

# Declared column types "JSON" and "BOOLEAN" come back as Python values (PARSE_DECLTYPES).
sqlite3.register_converter("JSON", json_values.loads)
sqlite3.register_converter("BOOLEAN", lambda raw: raw not in (b"0", b""))

_PLACEHOLDER = re.compile(r"\$(\d+)")
BUSY_TIMEOUT_MS = 10_000


@lru_cache(maxsize=1024)
def to_sqlite(sql: str) -> str:
    """$1-style placeholders -> SQLite's ?1 form (cached: statements are few and reused)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


def _param(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json_values.dumps(value)
    return value


def _params(args: Sequence[Any]) -> list[Any]:
    return [_param(a) for a in args]


def path_from_url(url: str) -> str:
    """sqlite:///relative/path, sqlite:////abs/path, or sqlite:///:memory:."""
    path = url.removeprefix("sqlite:///")
    if not path:
        raise ValueError("sqlite URL has no path")
    return path


# -- work that runs on a connection's thread ----------------------------------------------------


def _control(conn: sqlite3.Connection, sql: str) -> None:
    """Run a control statement to completion and finalize it (a half-stepped PRAGMA keeps locks)."""
    conn.execute(sql).close()


def _rows(cur: sqlite3.Cursor, rows: list[tuple[Any, ...]]) -> list[Row]:
    if not rows:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _fetch(sql: str, args: Sequence[Any], conn: sqlite3.Connection) -> list[Row]:
    cur = conn.execute(to_sqlite(sql), _params(args))
    try:
        return _rows(cur, cur.fetchall())
    finally:
        cur.close()


def _execute(sql: str, args: Sequence[Any], conn: sqlite3.Connection) -> int:
    cur = conn.execute(to_sqlite(sql), _params(args))
    try:
        return cur.rowcount
    finally:
        cur.close()


def _executemany(sql: str, args: Iterable[Sequence[Any]], conn: sqlite3.Connection) -> None:
    conn.executemany(to_sqlite(sql), [_params(a) for a in args]).close()


def _open_cursor(sql: str, args: Sequence[Any], conn: sqlite3.Connection) -> tuple[sqlite3.Cursor, list[str]]:
    cur = conn.execute(to_sqlite(sql), _params(args))
    return cur, [d[0] for d in cur.description or ()]


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        _control(conn, "ROLLBACK")


def _begin_waiting(conn: sqlite3.Connection, begin: str) -> None:
    """BEGIN on the connection's thread, waiting up to BUSY_TIMEOUT_MS for another process's write
    lock (the writer's timeout is 0 otherwise: see `_connect`)."""
    _control(conn, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        _control(conn, begin)
    finally:
        _control(conn, "PRAGMA busy_timeout = 0")


def _begun(begin: str, work: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """A reader's BEGIN (its connection waits on its own), then the first statement."""
    _control(conn, begin)
    return work(conn)


def _write_begun(begin: str, work: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """The writer's BEGIN, waiting for another process's lock, then the first statement."""
    _begin_waiting(conn, begin)
    return work(conn)


def begin_now(conn: sqlite3.Connection, begin: str) -> bool:
    """BEGIN without waiting for another connection's write lock: False (nothing begun) when it is
    held, so the caller can wait for it on a thread instead of the event loop's (also used by the
    SQLite queue's doorbell, trainer/ingest/queue.py)."""
    try:
        _control(conn, begin)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True


def _committed(work: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """The statement of a begun autocommit write, then COMMIT (ROLLBACK on failure)."""
    try:
        result = work(conn)
        _control(conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return result


def _autocommit(work: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> Any:
    """A write on its own: BEGIN IMMEDIATE, the statement, COMMIT, in one trip."""
    _begin_waiting(conn, "BEGIN IMMEDIATE")
    return _committed(work, conn)


def _connect(path: str, *, wal: bool, writer: bool = False) -> Callable[[], sqlite3.Connection]:
    """Readers wait up to BUSY_TIMEOUT_MS for a lock (rare in WAL mode). The writer never waits
    unless its BEGIN asks to: once BEGIN IMMEDIATE holds the write lock no statement of the
    transaction waits for one, and a BEGIN that must not wait (on the event loop's thread) then
    needs no statements around it to turn the timeout off and on again."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            detect_types=sqlite3.PARSE_DECLTYPES,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,  # a write transaction's statements may run on the loop's thread
        )
        try:
            for pragma in (
                f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA wal_autocheckpoint = 0",  # a thread checkpoints (trainer/db/sqlite_checkpoint.py)
            ):
                _control(conn, pragma)
            if wal:
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
            if writer:
                _control(conn, "PRAGMA busy_timeout = 0")
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


# -- the async side ------------------------------------------------------------------------------


class SQLiteTransaction(Transaction):
    """Statements of one transaction; its BEGIN is sent with the first of them.

    A write transaction (`inline`) runs on the event loop's thread whenever it cannot wait: BEGIN
    IMMEDIATE is tried without waiting, and once it holds the database's only write lock no
    statement of the transaction can wait for a lock (WAL readers never block a writer). A trip to
    the connection's thread would only let every other coroutine of the loop run first, each time,
    while the lock is held and every other writer waits. When another process holds the lock,
    BEGIN waits on the connection's thread instead. A COMMIT is only its WAL append: checkpoints,
    with their fsyncs, run on a thread of their own (trainer/db/sqlite_checkpoint.py).
    """

    dialect = "sqlite"

    def __init__(self, conn: ThreadConnection, begin: str, *, inline: bool = False) -> None:
        self._conn = conn
        self._begin: str | None = begin
        self._inline = inline

    async def _call(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        begin, self._begin = self._begin, None
        if begin is not None:
            if not self._inline:
                return await self._conn.call(partial(_begun, begin, work))
            if self._conn.idle and begin_now(self._conn.connection, begin):
                return work(self._conn.connection)
            return await self._conn.call(partial(_write_begun, begin, work))
        return await self._run(work)

    async def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._inline and self._conn.idle:
            return work(self._conn.connection)
        return await self._conn.call(work)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(partial(_fetch, sql, args))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(partial(_execute, sql, args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._call(partial(_executemany, sql, list(args)))

    async def lock(self, key: str) -> None:
        """Nothing to do: the transaction already holds SQLite's only write lock."""

    async def cursor(self, sql: str, *args: Any, batch: int = 500) -> AsyncIterator[Row]:
        cur, names = await self._call(partial(_open_cursor, sql, args))
        try:
            while rows := await self._run(lambda _conn: cur.fetchmany(batch)):
                for row in rows:
                    yield dict(zip(names, row, strict=True))
        finally:
            await self._run(lambda _conn: cur.close())

    async def end(self, *, commit: bool) -> None:
        """COMMIT (or ROLLBACK) what was begun; nothing was begun when no statement ran."""
        if self._begin is not None:
            self._begin = ""  # closed: a statement after the end would run outside the transaction
            return
        await self._run(partial(_control, sql="COMMIT") if commit else _rollback)


class SQLiteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: str, *, readers: int = 4) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._readers_wanted = 0 if self.path == ":memory:" else readers
        self._writer: ThreadConnection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[ThreadConnection] = asyncio.Queue()
        self._all_readers: list[ThreadConnection] = []
        self._in_transaction = contextvars.ContextVar(f"sqlite-tx-{id(self)}", default=False)
        self.checkpointer: WalCheckpointer | None = None

    async def _open_connection(self, name: str, *, wal: bool, writer: bool = False) -> ThreadConnection:
        conn = ThreadConnection(_connect(self.path, wal=wal, writer=writer), name=f"trainer-sqlite-{name}")
        await conn.open()
        return conn

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = await self._open_connection("writer", wal=self.path != ":memory:", writer=True)
            for n in range(self._readers_wanted):
                reader = await self._open_connection(f"reader{n}", wal=False)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
            if self.path != ":memory:":
                self.checkpointer = WalCheckpointer(_connect(self.path, wal=False), name="trainer-sqlite-checkpoints")
                await asyncio.to_thread(self.checkpointer.start)
        except sqlite3.Error as exc:
            await self.close()
            raise Unavailable(f"cannot open SQLite database {self.path}: {exc}") from None

    async def close(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
            self.checkpointer = None
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        self._readers = asyncio.Queue()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    @property
    def writer(self) -> ThreadConnection:
        if self._writer is None:
            raise Unavailable("database is not open")
        return self._writer

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[ThreadConnection]:
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
            return await self._write_alone(partial(_fetch, sql, args))
        async with self._reader() as conn:
            return await conn.call(partial(_fetch, sql, args))

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._write_alone(partial(_execute, sql, args))

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._write_alone(partial(_executemany, sql, list(args)))

    async def _write_alone(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        self._refuse_nested()
        async with self._write_lock:
            writer = self.writer
            if writer.idle and begin_now(writer.connection, "BEGIN IMMEDIATE"):
                return _committed(work, writer.connection)
            return await writer.call(partial(_autocommit, work))

    def _refuse_nested(self) -> None:
        if self._in_transaction.get():
            # The writer lock is not re-entrant: waiting for it here would hang forever.
            raise RuntimeError("write through the database inside its own open transaction: use the `tx` you hold")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        self._refuse_nested()
        async with self._write_lock:
            tx = SQLiteTransaction(self.writer, "BEGIN IMMEDIATE", inline=True)
            token = self._in_transaction.set(True)
            try:
                yield tx
                await tx.end(commit=True)
            except BaseException:
                await tx.end(commit=False)
                raise
            finally:
                self._in_transaction.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Transaction]:
        async with self._reader() as conn:
            tx = SQLiteTransaction(conn, "BEGIN")
            try:
                yield tx
            finally:
                await tx.end(commit=False)

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
