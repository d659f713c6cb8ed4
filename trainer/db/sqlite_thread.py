"""A sqlite3 connection that lives on a thread of its own, driven from asyncio in single hops.

sqlite3 blocks, so each connection gets one thread, and async code hands it whole operations:
"run this statement, fetch every row, name the columns" travels as one function and comes back as
one result. A hop (queue put, thread wake, result posted back to the loop) costs tens of
microseconds of CPU; a per-call API (execute, then fetchall, then close the cursor) pays it three
times per statement, which made a one-row SQLite transaction cost half a millisecond. Here a
statement is one hop and a transaction's BEGIN rides along with its first statement.

Calls run strictly in submission order, so a ROLLBACK submitted after a cancelled statement still
runs after it. A cancelled caller does not stop its statement: it finishes (or fails) on the
thread and its result is dropped, as with any driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], Any]


def _deliver(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class ThreadConnection:
    """One sqlite3 connection, owned by one thread; `call` runs a function with it there."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, name: str) -> None:
        self._connect = connect
        self._jobs: queue.SimpleQueue[tuple[asyncio.Future[Any], Work] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._open_error: BaseException | None = None
        self._opened = threading.Event()
        self._closing = False
        # Work submitted (counted by callers) and finished (counted by the thread): one writer each,
        # so no lock is needed to tell whether the thread is idle.
        self._submitted = 0
        self._finished = 0

    async def open(self) -> None:
        """Start the thread and connect on it; raises what connecting raised."""
        self._thread.start()
        await asyncio.to_thread(self._opened.wait)
        if self._open_error is not None:
            raise self._open_error

    @property
    def idle(self) -> bool:
        """No submitted work is still running or waiting on the thread (a cancelled caller's may be)."""
        return self._submitted == self._finished

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection itself, for work the caller runs on its own thread while the connection
        is `idle` (it must be opened with check_same_thread=False)."""
        if self._conn is None or self._closing:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._conn

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` on the connection's thread; one hop each way."""
        if self._closing or not self._thread.is_alive():
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submitted += 1
        self._jobs.put((future, work))
        return await future

    async def close(self) -> None:
        """Close the connection after the work already submitted, and end the thread."""
        self._closing = True
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)

    def _main(self) -> None:
        try:
            self._conn = self._connect()
        except BaseException as exc:
            self._open_error = exc
            self._opened.set()
            return
        self._opened.set()
        conn = self._conn
        try:
            while (job := self._jobs.get()) is not None:
                future, work = job
                try:
                    outcome: tuple[bool, Any] = (True, work(conn))
                except BaseException as exc:
                    outcome = (False, exc)
                finally:
                    self._finished += 1
                with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
                    future.get_loop().call_soon_threadsafe(_deliver, future, *outcome)
        finally:
            conn.close()
