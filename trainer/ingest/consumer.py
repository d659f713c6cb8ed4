"""The consumer: takes Huey tasks off the queue and runs them concurrently on one asyncio loop.

Processing an event is mostly waiting (the vendor's API, the database), so one loop with a few
events in flight does more than threads would, and shares one database pool: with SQLite that is
one writer connection serialized by an asyncio lock, instead of writers of several threads
contending through SQLite's busy-wait. CPU-bound steps (JSON, streams, analysis) take their turn on
the loop; to use more cores, run more `trainer worker` processes.

A consumer:
- dequeues tasks (in a thread: Huey's storages block), at most `concurrency` running at once;
- puts tasks that are not due yet into Huey's schedule, and every second moves due ones back;
- sweeps the inbox when it starts and then every `ingest_stale_s` (trainer/ingest/sweeper.py);
- delivers due notifications every minute and right after each task (trainer/notify/tasks.py);
- on stop, takes no new task and gives running ones `shutdown_timeout_s` to finish; whatever is cut
  off stays claimed in the inbox and is handed on by the sweeper after `ingest_lease_s`.

`trainer serve` runs one in a background thread (`EmbeddedWorker`), woken at once when the server
rings; `trainer worker` runs one in its main thread (`run_worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from trainer import loops
from trainer.config import Settings
from trainer.ingest import sweeper
from trainer.ingest.pipeline import Context
from trainer.ingest.queue import IngestQueue, Job
from trainer.ingest.runtime import PluginLoader, installed_plugins, open_context
from trainer.notify.tasks import DeliveryLoop

log = logging.getLogger("trainer.ingest")

POLL_MIN_S = 0.01
POLL_MAX_S = 0.5
SCHEDULE_EVERY_S = 1.0


class AsyncConsumer:
    def __init__(self, queue: IngestQueue, context: Context, *, concurrency: int) -> None:
        self.queue = queue
        self.huey = queue.huey
        self.context = context
        self.concurrency = concurrency
        self.stopping = asyncio.Event()
        self._hurry = False
        self._woken = asyncio.Event()
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.delivery = DeliveryLoop(context)
        context.stopping = self.stopping.is_set  # jobs stop chaining an account's rows once stopping
        context.on_processed = self.delivery.nudge  # a processed event may have queued a notification

    def stop(self, *, graceful: bool = True) -> None:
        """Stop taking tasks; unless `graceful`, also cancel the running ones (call on this loop)."""
        self.stopping.set()
        self._woken.set()
        if not graceful:
            self._hurry = True
            for task in self._in_flight:
                task.cancel()

    def wake(self) -> None:
        """New work was rung in this process (call on this loop)."""
        self._woken.set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        timers = [
            asyncio.create_task(self._every(SCHEDULE_EVERY_S, self._release_due_retries)),
            asyncio.create_task(self._every(self.context.settings.ingest_stale_s, self._sweep)),
            asyncio.create_task(self.delivery.run(self.stopping)),
        ]
        idle = POLL_MIN_S
        try:
            while not self.stopping.is_set():
                await slots.acquire()
                if self.stopping.is_set():
                    slots.release()
                    break
                task = await self._next_task()
                if task is None:
                    slots.release()
                    if not self.huey.storage.blocking:
                        await self._pause(idle)
                        idle = min(idle * 2, POLL_MAX_S)
                    continue
                idle = POLL_MIN_S
                if not self.huey.ready_to_run(task):
                    await asyncio.to_thread(self.huey.add_schedule, task)
                    slots.release()
                    continue
                for n, job in enumerate(self._jobs(task)):
                    if n:  # a task of several rows: one slot per row, as if rung one by one
                        await slots.acquire()
                    running = asyncio.create_task(self._execute(task, job))
                    self._in_flight.add(running)
                    running.add_done_callback(lambda done: (self._in_flight.discard(done), slots.release()))
        finally:
            for timer in timers:
                timer.cancel()
            await self._drain()

    async def _next_task(self) -> Any:
        try:
            return await asyncio.to_thread(self.huey.dequeue)
        except Exception:
            log.exception("reading the task queue failed; trying again")
            await self._pause(1.0)
            return None

    @staticmethod
    def _jobs(task: Any) -> list[Job]:
        """What a task asks to run: one job, or a job per inbox row it carries; a task that fails
        to say is run as a job that fails, so it is logged like any other failure."""
        try:
            made = task.execute()
        except Exception as exc:
            error = exc

            async def failed(_ctx: Context) -> None:
                raise error

            return [failed]
        return list(made) if isinstance(made, list) else [made]

    async def _execute(self, task: Any, job: Job) -> None:
        log.info("Executing %s", task)  # as Huey's own consumer logs it
        try:
            await job(self.context)
        except asyncio.CancelledError:
            raise
        except Exception:  # the pipeline handles its own failures; this is a bug, not an event's fault
            log.exception("task %s failed", task.name)

    async def _drain(self) -> None:
        if self._in_flight and not self._hurry:
            await asyncio.wait(self._in_flight, timeout=self.context.settings.shutdown_timeout_s)
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight)

    async def _pause(self, seconds: float) -> None:
        """Sleep until the timeout, a wake-up, or stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        self._woken.clear()

    async def _every(self, period_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while not self.stopping.is_set():
            try:
                await action()
            except Exception:
                log.exception("periodic ingest work failed; trying again in %s s", period_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), period_s)

    async def _release_due_retries(self) -> None:
        for task in await asyncio.to_thread(self.huey.read_schedule):
            await asyncio.to_thread(self.huey.enqueue, task)

    async def _sweep(self) -> None:
        await sweeper.sweep(self.context)


async def consume(
    settings: Settings,
    queue: IngestQueue,
    *,
    concurrency: int,
    plugins: PluginLoader = installed_plugins,
    started: Callable[[AsyncConsumer], None] | None = None,
) -> None:
    """Open a context on this loop and consume until the consumer is stopped."""
    # A connection per event in flight (PostgreSQL), plus the sweeper's and the scheduler's.
    context, close = await open_context(settings, queue, plugins=plugins, pool_size=concurrency + 2)
    try:
        consumer = AsyncConsumer(queue, context, concurrency=concurrency)
        loop = asyncio.get_running_loop()
        forget = queue.listen(lambda: loop.call_soon_threadsafe(consumer.wake))
        if started is not None:
            started(consumer)
        try:
            await consumer.run()
        finally:
            forget()
    finally:
        await close()


class EmbeddedWorker:
    """A consumer in a background thread of `trainer serve`, on its own loop."""

    def __init__(self, queue: IngestQueue, concurrency: int, *, plugins: PluginLoader = installed_plugins) -> None:
        self.queue = queue
        self.concurrency = concurrency
        self.plugins = plugins
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: AsyncConsumer | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="trainer-ingest-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Let running events finish (up to shutdown_timeout_s), then return (blocking)."""
        if self._loop is not None and self._consumer is not None:
            self._loop.call_soon_threadsafe(self._consumer.stop)
        self._thread.join(self.queue.settings.shutdown_timeout_s + 10)

    def _main(self) -> None:
        def started(consumer: AsyncConsumer) -> None:
            self._loop, self._consumer = asyncio.get_running_loop(), consumer
            self._ready.set()

        try:
            loops.run(
                consume(
                    self.queue.settings,
                    self.queue,
                    concurrency=self.concurrency,
                    plugins=self.plugins,
                    started=started,
                ),
                self.queue.settings.event_loop,
            )
        except BaseException as exc:
            self._error = exc
            log.exception("the embedded ingest worker stopped")
        finally:
            self._ready.set()


async def run_worker(settings: Settings, concurrency: int) -> None:
    """`trainer worker`: consume in this (main) thread until SIGTERM or SIGINT.

    The first signal stops taking tasks and lets running ones finish; a second one cuts them off.
    """
    queue = IngestQueue(settings)
    loop = asyncio.get_running_loop()

    def on_signal(consumer: AsyncConsumer) -> None:
        consumer.stop(graceful=not consumer.stopping.is_set())

    def started(consumer: AsyncConsumer) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, consumer)

    await consume(settings, queue, concurrency=concurrency, started=started)
