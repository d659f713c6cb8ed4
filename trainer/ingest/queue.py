"""The task queue: Huey as the inbox's doorbell.

Tasks carry inbox row ids only; the row is the truth (trainer/ingest/inbox.py). `queue_url` picks
the storage:

    ""             SqliteHuey in <data_dir>/queue.db: one machine, `trainer serve` alone, or with
                   `trainer worker` processes beside it sharing the file
    redis://...    RedisHuey: servers and workers on several machines
    sqlite:///p    SqliteHuey at an explicit path
    memory://      MemoryHuey: one process only (tests, `trainer serve` with its embedded worker)

Huey provides the storages, serialization, and the schedule that holds retries until they are
due; trainer's own asyncio consumer (trainer/ingest/consumer.py) runs the tasks. A task's function
returns a job, `async (Context) -> ...`, that the consumer awaits with its context, so many events
are processed concurrently on one event loop and one database pool.

The doorbell's own storage is not made durable at great cost: the SQLite queue commits without
fsync (synchronous=NORMAL in WAL mode, still crash-consistent), because a ring lost to a power cut
is recovered by the sweeper from the inbox, which is durable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey
from huey.storage import RedisStorage, SqliteStorage

from trainer.config import Settings
from trainer.db.sqlite import begin_now
from trainer.ingest import pipeline
from trainer.notify.tasks import NotifyTasks

log = logging.getLogger("trainer.ingest")

QUEUE_NAME = "trainer"
PROCESS_TASK = "ingest_process"

Job = Callable[[pipeline.Context], Awaitable[Any]]


class _DoorbellSqliteStorage(SqliteStorage):
    """Huey's SQLite storage in WAL mode with synchronous=NORMAL (see the module docstring), with a
    batch enqueue (one transaction for all the rows of a webhook batch) that can also be tried
    without waiting, on the caller's own thread."""

    _ENQUEUE = "insert into task (queue, data, priority) values (?, ?, 0)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nowait: sqlite3.Connection | None = None
        self._nowait_lock = threading.Lock()

    def _create_connection(self) -> Any:
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn

    def enqueue_many(self, messages: Sequence[bytes]) -> None:
        with self.db(commit=True) as cursor:
            cursor.executemany(self._ENQUEUE, [(self.name, self.to_blob(m)) for m in messages])

    def try_enqueue_many(self, messages: Sequence[bytes]) -> bool:
        """enqueue_many if it needs no wait, else False and nothing written: another process (a
        worker dequeuing) or thread holds the queue's write lock, and the caller waits on a thread.

        A connection of its own with a busy timeout of 0: the storage's shared connection waits up
        to its timeout for a lock, behind a lock of its own that other threads hold meanwhile.
        """
        if not self._nowait_lock.acquire(blocking=False):
            return False
        try:
            if self._nowait is None:
                self._nowait = sqlite3.connect(self.filename, timeout=0, isolation_level=None, check_same_thread=False)
                self._nowait.execute("pragma synchronous=1")
            conn = self._nowait
            if not begin_now(conn, self.begin_sql):
                return False
            try:
                conn.executemany(self._ENQUEUE, [(self.name, self.to_blob(m)) for m in messages])
                conn.execute("commit")
            except BaseException:
                conn.rollback()
                raise
            return True
        finally:
            self._nowait_lock.release()


def make_huey(settings: Settings, *, name: str = QUEUE_NAME) -> Huey:
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://")):
        return RedisHuey(name, url=url, results=False, blocking=True, read_timeout=1)
    if url.startswith("memory://"):
        return MemoryHuey(name, results=False)
    path = Path(url.removeprefix("sqlite:///")) if url else settings.data_dir / "queue.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return Huey(name, results=False, storage_class=_DoorbellSqliteStorage, filename=str(path))


def describe(settings: Settings) -> str:
    """The queue for banners and logs, without credentials."""
    url = settings.queue_url
    if url.startswith(("redis://", "rediss://")):
        return "Redis queue"
    if url.startswith("memory://"):
        return "in-memory queue"
    return f"SQLite queue at {url.removeprefix('sqlite:///') or settings.data_dir / 'queue.db'}"


RING_BATCH = 100
"""Row ids per doorbell task: a webhook batch rings once, not once per event."""


QUEUE_CHAIN = 10
"""Rows of one account a queued job works through in turn before it rings the next one instead
(pipeline.process_row): a backlog skips the queue, and no slot is held by one account for long."""


def _process(*row_ids: str) -> list[Job]:
    """The task of inbox rows rung together: a job per row (claim it, run the pipeline, go on with
    the account's next rows), which the consumer runs concurrently like jobs of separate tasks."""
    return [functools.partial(pipeline.process_row, row_id=row_id, chain=QUEUE_CHAIN) for row_id in row_ids]


class IngestQueue:
    """A Huey instance with trainer's task, the producer side of it, and in-process wake-ups."""

    def __init__(self, settings: Settings, *, name: str = QUEUE_NAME) -> None:
        self.settings = settings
        self.huey = make_huey(settings, name=name)
        self._process = self.huey.task(name=PROCESS_TASK)(_process)
        self.notify = NotifyTasks(self.huey)  # so consumers can run `notify_deliver` tasks rung elsewhere
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def _messages(self, row_ids: Sequence[str]) -> list[bytes]:
        """The rows' tasks, RING_BATCH rows to a task: a task per row would cost a task id, a
        pickle and a queue row per event."""
        return [
            self.huey.serialize_task(self._process.s(*row_ids[n : n + RING_BATCH]))
            for n in range(0, len(row_ids), RING_BATCH)
        ]

    def ring_now(self, row_ids: Sequence[str]) -> None:
        """Enqueue the rows in one storage round trip where the storage allows (blocking)."""
        if row_ids:
            self._enqueue(self._messages(row_ids))

    def _enqueue(self, messages: list[bytes]) -> None:
        storage = self.huey.storage
        if isinstance(storage, _DoorbellSqliteStorage):
            storage.enqueue_many(messages)
        elif type(storage) is RedisStorage:
            storage.conn.lpush(storage.queue_key, *messages)
        else:
            for message in messages:
                storage.enqueue(message, None)
        self._wake()

    async def ring(self, row_ids: Sequence[str]) -> None:
        """The doorbell for async code. The SQLite queue is written on the loop's thread when its
        lock is free (a local write of a few rows: less than the thread hop, whose GIL handoffs
        slowed the server's webhook answers by a few per cent); otherwise, and for Redis (a
        network round trip), the blocking enqueue runs in a thread."""
        if not row_ids:
            return
        messages = self._messages(row_ids)
        storage = self.huey.storage
        if isinstance(storage, _DoorbellSqliteStorage) and storage.try_enqueue_many(messages):
            self._wake()
            return
        await asyncio.to_thread(self._enqueue, messages)

    def ring_later_now(self, row_id: str, delay_s: float) -> None:
        """Enqueue a task that waits in Huey's schedule until the row's retry is due (blocking)."""
        self.huey.enqueue(self._process.s(row_id, delay=max(delay_s, 0.0)))

    async def ring_later(self, row_id: str, delay_s: float) -> None:
        await asyncio.to_thread(self.ring_later_now, row_id, delay_s)

    def pending(self) -> int:
        """Inbox rows rung and waiting in the queue (scheduled retries are counted once a consumer
        has seen them). Reads every waiting task: for tests and diagnostics, not hot paths."""
        return sum(len(task.args) for task in self.huey.pending() if task.name == PROCESS_TASK)

    # -- consumers in this process ------------------------------------------------------------

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` (from any thread) whenever this process rings; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(wake)

        def forget() -> None:
            with self._lock:
                self._listeners.remove(wake)

        return forget

    def _wake(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for wake in listeners:
            wake()
