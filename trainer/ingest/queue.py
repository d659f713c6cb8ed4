"""The task queue: Huey as the inbox's doorbell.

Tasks carry inbox row ids only; the row is the truth (trainer/ingest/inbox.py). `queue_url` picks
the storage:

    ""             SqliteHuey in <data_dir>/queue.db: one machine, `trainer serve` alone, or with
                   `trainer worker` processes beside it sharing the file
    redis://...    RedisHuey: servers and workers on several machines
    sqlite:///p    SqliteHuey at an explicit path
    memory://      MemoryHuey: one process only (tests, `trainer serve` with its embedded worker)

Consumers are Huey's own thread consumers. `trainer worker` runs one in the foreground (Huey's
signal handling: SIGINT finishes running tasks, SIGTERM stops at once). `trainer serve` starts one
in background threads of the server process (`EmbeddedWorker`) without signal handlers of its own,
stopped from the server's cleanup. Either way each worker thread runs its tasks on a private event
loop (trainer/ingest/runtime.py), so the server's loop never blocks on task work.

The doorbell's own storage is not made durable at great cost: the SQLite queue commits without
fsync (synchronous=NORMAL in WAL mode, still crash-consistent), because a ring lost to a power cut
is recovered by the sweeper from the inbox, which is durable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, crontab
from huey.consumer import Consumer
from huey.storage import SqliteStorage

from trainer.config import Settings
from trainer.ingest import pipeline, sweeper
from trainer.ingest.runtime import PluginLoader, WorkerRuntime, installed_plugins

log = logging.getLogger("trainer.ingest")

QUEUE_NAME = "trainer"
PROCESS_TASK = "ingest_process"
SWEEP_TASK = "ingest_sweep"


class _DoorbellSqliteStorage(SqliteStorage):
    """Huey's SQLite storage in WAL mode with synchronous=NORMAL (see the module docstring)."""

    def _create_connection(self) -> Any:
        conn = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


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


class IngestQueue:
    """A Huey instance with trainer's two tasks: process one inbox row, and sweep."""

    def __init__(
        self, settings: Settings, *, name: str = QUEUE_NAME, plugins: PluginLoader = installed_plugins
    ) -> None:
        self.settings = settings
        self.huey = make_huey(settings, name=name)
        self.plugins = plugins  # how worker threads load plugins (tests inject theirs before the first task)
        self._local = threading.local()
        self._process = self.huey.task(name=PROCESS_TASK)(self._run_process)
        self._sweep = self.huey.periodic_task(crontab(minute="*"), name=SWEEP_TASK)(self._run_sweep)
        self.huey.on_shutdown(name="close_runtime")(self._close_runtime)

    # -- producers --------------------------------------------------------------------------

    def ring_now(self, row_ids: Sequence[str]) -> None:
        """Enqueue one task per row (blocking: call from a worker thread or through `ring`)."""
        for row_id in row_ids:
            self._process(row_id)

    async def ring(self, row_ids: Sequence[str]) -> None:
        """The doorbell for async code on a server loop: the enqueue runs in a thread."""
        if row_ids:
            await asyncio.to_thread(self.ring_now, list(row_ids))

    def ring_later(self, row_id: str, delay_s: float) -> None:
        """Enqueue a task for when the row's retry is due (kept in Huey's schedule until then)."""
        self._process.schedule(args=(row_id,), delay=max(delay_s, 0.0))

    def request_sweep(self) -> None:
        self._sweep()

    def pending(self) -> int:
        """Tasks waiting in the queue (not counting scheduled retries)."""
        return int(self.huey.pending_count())

    # -- consumers ----------------------------------------------------------------------------

    def consumer(self, workers: int, *, embedded: bool = False, graceful_signal: str = "INT") -> Consumer:
        """A thread consumer; `embedded` ones leave the process's signal handlers alone, others stop
        gracefully on `graceful_signal` ("INT" or "TERM") and at once on the other."""
        cls = _EmbeddedConsumer if embedded else Consumer
        # Redis blocks on its queue; the others are polled: at most every 0.5 s once idle.
        return cls(
            self.huey,
            workers=workers,
            worker_type="thread",
            periodic=True,
            initial_delay=0.02,
            backoff=1.5,
            max_delay=0.5,
            check_worker_health=True,
            health_check_interval=5,
            shutdown_timeout=self.settings.shutdown_timeout_s,
            graceful_signal=graceful_signal,
        )

    def _runtime(self) -> WorkerRuntime:
        runtime = getattr(self._local, "runtime", None)
        if runtime is None:
            runtime = WorkerRuntime.open(
                self.settings, ring=self.ring_now, ring_later=self.ring_later, plugins=self.plugins
            )
            self._local.runtime = runtime
        return runtime

    def _close_runtime(self) -> None:
        runtime = getattr(self._local, "runtime", None)
        if runtime is not None:
            self._local.runtime = None
            runtime.close()

    def _run_process(self, row_id: str) -> None:
        runtime = self._runtime()
        runtime.run(pipeline.process_row(runtime.context, row_id))

    def _run_sweep(self) -> None:
        runtime = self._runtime()
        runtime.run(sweeper.sweep(runtime.context))


class _EmbeddedConsumer(Consumer):
    def _set_signal_handlers(self) -> None:
        """The server owns SIGINT/SIGTERM; it stops this consumer from its cleanup."""


class EmbeddedWorker:
    """Consumer threads inside `trainer serve`, started and stopped with the application."""

    def __init__(self, queue: IngestQueue, workers: int) -> None:
        self.queue = queue
        self.consumer = queue.consumer(workers, embedded=True)

    def start(self) -> None:
        self.consumer.start()
        self.queue.request_sweep()  # pick up what a previous run left behind, now rather than in a minute

    def stop(self) -> None:
        """Let running tasks finish (up to shutdown_timeout_s), then return."""
        self.consumer.stop(graceful=True)
