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
