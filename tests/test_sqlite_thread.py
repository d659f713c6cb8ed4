"""The thread-owned SQLite connection under trainer/db/sqlite.py: order, errors, cancellation, close."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from trainer.db.sqlite_thread import ThreadConnection


def _connection(path: Path) -> ThreadConnection:
    return ThreadConnection(lambda: sqlite3.connect(path, isolation_level=None), name="test-sqlite")


async def test_work_runs_on_the_connection_thread_in_order(tmp_path: Path) -> None:
    conn = _connection(tmp_path / "t.db")
    await conn.open()
    try:
        await conn.call(lambda c: c.execute("CREATE TABLE t (n INTEGER)"))
        names = await asyncio.gather(
            *(
                conn.call(
                    lambda c, n=n: (c.execute("INSERT INTO t VALUES (?)", (n,)), threading.current_thread().name)[1]
                )
                for n in range(50)
            )
        )
        assert set(names) == {"test-sqlite"}
        assert await conn.call(lambda c: [r[0] for r in c.execute("SELECT n FROM t ORDER BY rowid")]) == list(range(50))
    finally:
        await conn.close()


async def test_an_error_reaches_its_caller_and_the_thread_goes_on(tmp_path: Path) -> None:
    conn = _connection(tmp_path / "t.db")
    await conn.open()
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await conn.call(lambda c: c.execute("SELECT * FROM missing"))
        assert await conn.call(lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
    finally:
        await conn.close()


async def test_a_cancelled_caller_does_not_stop_the_work_after_it(tmp_path: Path) -> None:
    conn = _connection(tmp_path / "t.db")
    await conn.open()
    release = threading.Event()
    try:
        slow = asyncio.create_task(conn.call(lambda c: release.wait(5)))
        following = asyncio.create_task(conn.call(lambda c: c.execute("SELECT 2").fetchone()[0]))
        await asyncio.sleep(0.05)
        slow.cancel()
        release.set()
        assert await following == 2
        with pytest.raises(asyncio.CancelledError):
            await slow
    finally:
        await conn.close()


async def test_closed_connections_refuse_work_and_bad_paths_fail_to_open(tmp_path: Path) -> None:
    conn = _connection(tmp_path / "t.db")
    await conn.open()
    await conn.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await conn.call(lambda c: c.execute("SELECT 1"))
    broken = _connection(tmp_path / "no" / "such" / "dir" / "t.db")
    with pytest.raises(sqlite3.OperationalError):
        await broken.open()


async def test_writes_wait_for_another_connections_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    """Uncontended writes run on the loop's thread; a write lock held elsewhere (another process)
    is waited for on the connection's thread, and the loop keeps serving meanwhile."""
    from trainer.db.sqlite import SQLiteDatabase

    db = SQLiteDatabase(f"sqlite:///{tmp_path / 'x.db'}")
    await db.open()
    other = sqlite3.connect(tmp_path / "x.db", isolation_level=None, check_same_thread=False)
    try:
        await db.execute("CREATE TABLE t (n INTEGER)")
        other.execute("BEGIN IMMEDIATE")

        async def in_transaction() -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (2)")

        alone = asyncio.create_task(db.execute("INSERT INTO t VALUES (1)"))
        transaction = asyncio.create_task(in_transaction())
        ticks = 0
        for _ in range(10):  # the loop runs while both wait for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 10 and not alone.done() and not transaction.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(alone, 10) == 1
        await asyncio.wait_for(transaction, 10)
        assert [r["n"] for r in await db.fetch("SELECT n FROM t ORDER BY n")] == [1, 2]
    finally:
        other.close()
        await db.close()
