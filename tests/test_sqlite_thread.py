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
    from trainer.db.sqlite import BUSY_TIMEOUT_MS, SQLiteDatabase

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
        # Only the waiting BEGINs waited: the writer is back to never waiting, readers still wait.
        assert db.writer.connection.execute("PRAGMA busy_timeout").fetchone() == (0,)
        async with db.snapshot() as snap:
            assert await snap.fetchval("PRAGMA busy_timeout") == BUSY_TIMEOUT_MS
    finally:
        other.close()
        await db.close()


async def test_commits_append_to_the_wal_and_a_thread_checkpoints_it(tmp_path: Path) -> None:
    """A commit never copies the WAL into the database file (that fsyncs on the committer's thread,
    the event loop's); the checkpointer thread does, soon after."""
    from trainer.db import sqlite_checkpoint
    from trainer.db.sqlite import SQLiteDatabase

    path = tmp_path / "x.db"
    db = SQLiteDatabase(f"sqlite:///{path}")
    await db.open()
    try:
        assert db.checkpointer is not None
        await asyncio.to_thread(db.checkpointer.stop)  # no ticks: only the commits run
        await db.execute("CREATE TABLE t (n INTEGER, pad BLOB)")
        before = path.stat().st_size
        for n in range(300):  # about 2,400 pages, past SQLite's automatic checkpoint (1,000 pages)
            await db.execute("INSERT INTO t VALUES ($1, randomblob(32000))", n)
        assert path.stat().st_size == before  # every page is still only in the WAL
        assert await db.fetchval("SELECT count(*) FROM t") == 300

        ticking = sqlite_checkpoint.WalCheckpointer(
            lambda: sqlite3.connect(path, check_same_thread=False), name="test-checkpoints", interval_s=0.01
        )
        await asyncio.to_thread(ticking.start)
        for _ in range(500):
            if ticking.checkpoints:
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(ticking.stop)
        assert ticking.checkpoints >= 1 and path.stat().st_size > 300 * 32000
    finally:
        await db.close()


async def test_the_database_checkpoints_on_its_own_while_open(tmp_path: Path) -> None:
    from trainer.db.sqlite import SQLiteDatabase

    path = tmp_path / "x.db"
    db = SQLiteDatabase(f"sqlite:///{path}")
    await db.open()
    try:
        await db.execute("CREATE TABLE t (pad BLOB)")
        await db.execute("INSERT INTO t VALUES (randomblob(100000))")
        assert db.checkpointer is not None
        for _ in range(500):
            if db.checkpointer.checkpoints:
                break
            await asyncio.sleep(0.01)
        assert db.checkpointer.checkpoints >= 1 and path.stat().st_size > 100000
    finally:
        await db.close()
    assert db.checkpointer is None
