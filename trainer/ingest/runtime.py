"""The asyncio side of a queue worker thread.

Huey runs task functions synchronously in its worker threads; trainer's processing is async code on
asyncpg/aiosqlite and aiohttp. Each worker thread therefore owns one `WorkerRuntime`: a private
event loop, its own database pool and its own started plugins. Nothing is shared between threads
or with the HTTP server's loop, because connections and client sessions belong to the loop that
opened them. A task is `runtime.run(coroutine)`: run to completion on that loop, then return.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from trainer.config import Settings, ensure_secret_key
from trainer.db import Database, create_database
from trainer.ingest.pipeline import Context
from trainer.plugin_host import load_plugins, stop_plugins
from trainer.plugins import Registry
from trainer.store.accounts import TokenCipher

log = logging.getLogger("trainer.ingest")
T = TypeVar("T")

Closer = Callable[[], Awaitable[None]]
PluginLoader = Callable[[Settings, str, Database], Awaitable[tuple[Registry, Closer]]]
"""Builds a worker's plugins: (settings, server secret, database) -> (registry, how to stop them)."""

WORKER_POOL_SIZE = 2


async def installed_plugins(settings: Settings, secret: str, db: Database) -> tuple[Registry, Closer]:
    """The plugins installed through entry points, as the server loads them."""
    registry, host = await load_plugins(settings, secret, db)

    async def close() -> None:
        await stop_plugins(registry, host)

    return registry, close


class WorkerRuntime:
    def __init__(self, loop: asyncio.AbstractEventLoop, context: Context, closers: list[Closer]) -> None:
        self.loop = loop
        self.context = context
        self._closers = closers

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        ring: Callable[[Sequence[str]], None],
        ring_later: Callable[[str, float], None],
        plugins: PluginLoader = installed_plugins,
    ) -> WorkerRuntime:
        """Open a runtime for the calling thread; `ring`/`ring_later` enqueue (blocking calls are
        fine here: this loop runs one task at a time and nothing else waits on it)."""
        loop = asyncio.new_event_loop()
        closers: list[Closer] = []
        try:
            db = create_database(settings.resolved_database_url, pool_size=WORKER_POOL_SIZE)
            loop.run_until_complete(db.open())
            closers.append(db.close)
            secret = ensure_secret_key(settings)
            registry, stop = loop.run_until_complete(plugins(settings, secret, db))
            closers.append(stop)
        except BaseException:
            for close in reversed(closers):
                loop.run_until_complete(close())
            loop.close()
            raise

        async def ring_async(ids: Sequence[str]) -> None:
            ring(ids)

        async def ring_later_async(row_id: str, delay_s: float) -> None:
            ring_later(row_id, delay_s)

        context = Context(
            db=db,
            plugins=registry,
            settings=settings,
            cipher=TokenCipher(secret),
            ring=ring_async,
            ring_later=ring_later_async,
        )
        return cls(loop, context, closers)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        for close in reversed(self._closers):
            try:
                self.loop.run_until_complete(close())
            except Exception:
                log.warning("closing a worker resource failed", exc_info=True)
        self._closers.clear()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
