"""Delivery as queue work, on the ingest queue's Huey.

    notify_deliver           one delivery run; rung right after a commit that enqueued messages
    notify_deliver_periodic  the same, every minute: deferred (quiet hours) and retried messages
                             come due without anyone ringing, and a lost ring costs a minute at most

Both tasks only call `deliver_due`, which claims before it sends, so any number of them running
at once on any number of workers still sends each message once. They run on the worker thread's
runtime (its own event loop, database pool and started plugins: trainer/ingest/runtime.py).

Every process that enqueues or consumes must register the tasks (Huey finds a task by its name):
`IngestQueue` does it in its constructor with `NotifyTasks(self.huey, self._runtime)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from huey import Huey, crontab

from trainer.db import Database
from trainer.notify.runner import RunReport, deliver_due
from trainer.plugins import Registry

log = logging.getLogger("trainer.notify")
T = TypeVar("T")

DELIVER_TASK = "notify_deliver"
PERIODIC_TASK = "notify_deliver_periodic"


class _Context(Protocol):
    db: Database
    plugins: Registry


class Runtime(Protocol):
    """What a worker thread offers a task: its loop (`run`) and its database and plugins."""

    @property
    def context(self) -> _Context: ...

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


class NotifyTasks:
    def __init__(self, huey: Huey, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime
        self._deliver = huey.task(name=DELIVER_TASK)(self.run_once)
        self._periodic = huey.periodic_task(crontab(minute="*"), name=PERIODIC_TASK)(self.run_once)

    def ring_now(self) -> None:
        """Ask a worker for a delivery run (blocking enqueue: call from a worker thread or via `ring`).

        Call it after the transaction that enqueued the messages has committed; rung earlier, the
        run may find nothing and the messages wait for the periodic run."""
        self._deliver()

    async def ring(self) -> None:
        """`ring_now` for async code on a server loop (the enqueue may block on Redis or SQLite)."""
        await asyncio.to_thread(self.ring_now)

    def run_once(self) -> RunReport:
        """The task body: one delivery run on this worker thread's runtime."""
        runtime = self._runtime()
        return runtime.run(deliver_due(runtime.context.db, runtime.context.plugins))
