"""Delivery as queue work, for the ingest consumer (trainer/ingest/consumer.py).

Two ways in, both ending in `deliver_due` on the consumer's own loop, database pool and plugins:

    DeliveryLoop   one per consumer: a run every `period_s` (deferred and retried messages come
                   due without anyone asking) and a run soon after `nudge()` (the pipeline nudges
                   after each event it processed, so a processed activity's push goes out within
                   moments).
                   Runs never overlap within a consumer, and nudges during a run coalesce into one.
    NotifyTasks    the `notify_deliver` Huey task, for processes without a consumer (the API server
                   after a commit that enqueued messages): its job is one delivery run.

Any number of these running at once, in any number of processes, still send each message once:
`deliver_due` claims before it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from huey import Huey

from trainer.db import Database
from trainer.notify.runner import RunReport, deliver_due
from trainer.plugins import Registry

log = logging.getLogger("trainer.notify")

DELIVER_TASK = "notify_deliver"
PERIOD_S = 60.0


class Context(Protocol):
    """What a consumer hands its jobs (trainer.ingest.pipeline.Context has these)."""

    db: Database
    plugins: Registry


async def deliver_job(ctx: Context) -> RunReport:
    """One delivery run as a consumer job."""
    return await deliver_due(ctx.db, ctx.plugins)


def _deliver_task() -> Callable[[Context], Awaitable[RunReport]]:
    return deliver_job


class NotifyTasks:
    """The `notify_deliver` task on a Huey; every process that enqueues or consumes registers it."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._task = huey.task(name=DELIVER_TASK)(_deliver_task)

    def ring_now(self) -> None:
        """Enqueue a delivery run (blocking). Call after the transaction that wrote the messages
        has committed; rung earlier, the run may find nothing and they wait for the periodic run."""
        self.huey.enqueue(self._task.s())

    async def ring(self) -> None:
        """`ring_now` for async code (the enqueue may block on Redis or SQLite)."""
        await asyncio.to_thread(self.ring_now)


class DeliveryLoop:
    """Periodic and nudged delivery runs on one consumer's loop."""

    def __init__(self, context: Context, *, period_s: float = PERIOD_S) -> None:
        self.context = context
        self.period_s = period_s
        self._soon = asyncio.Event()
        self.runs = 0

    def nudge(self) -> None:
        """Something may have been enqueued: run soon (call on the consumer's loop)."""
        self._soon.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; a failed run is logged and the loop goes on."""
        while not stopping.is_set():
            self._soon.clear()
            try:
                await deliver_job(self.context)
            except Exception:
                log.exception("notification delivery failed; trying again in %s s", self.period_s)
            self.runs += 1
            await self._wait(stopping)

    async def _wait(self, stopping: asyncio.Event) -> None:
        """Until a nudge, the period, or stop, whichever comes first."""
        waits = [asyncio.ensure_future(self._soon.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), self.period_s)
        finally:
            for waiter in waits:
                waiter.cancel()
